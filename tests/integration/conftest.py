"""Integration fixtures: the web app in-process (signed by a test key, clock at `NOW`), and either database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from automation.config import Settings, load_settings
from automation.store import db
from automation.web.app import create_app
from tests.webhooks import NOW, PUBLIC_URL, SendGridSigner


@pytest.fixture
def signer() -> SendGridSigner:
    return SendGridSigner()


@pytest.fixture
def web_settings(env: dict[str, str], signer: SendGridSigner, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", signer.public_key)
    monkeypatch.setenv("AUTOMATION_PUBLIC_URL", PUBLIC_URL)
    return load_settings()


@pytest.fixture
def client(web_settings: Settings, sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    with TestClient(create_app(web_settings, sessions, clock=lambda: NOW)) as c:
        yield c


@pytest.fixture(params=["postgresql", "sqlite"])
def either_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """A migrated, empty database for this test: PostgreSQL, then SQLite (a parity test)."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/t.db"
    engine = db.make_engine(url)
    db.upgrade(engine)
    yield db.sessions(engine)
    engine.dispose()
