"""The web app in-process, as the webhook tests drive it: signed by a test key, clock at `NOW`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from automation.config import Settings, load_settings
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
