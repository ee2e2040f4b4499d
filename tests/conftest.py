"""Shared fixtures: a fresh PostgreSQL database and Redis namespace per test, stand-ins.

Each test gets its own database, cloned from a migrated template made once per
run, and its own Redis key namespace, removed afterwards, so runs never see
each other's data. Point them elsewhere with TEST_DATABASE_URL (a server URL
whose user may create databases) and TEST_REDIS_URL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from automation.config import Settings, load_settings
from automation.store import db
from tests.standins import SendGridStandIn, TwilioStandIn

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN = uuid.uuid4().hex[:8]
TEMPLATE = f"automation_tmpl_{RUN}"


def _admin() -> Engine:
    url = make_url(ADMIN_URL)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(url, isolation_level="AUTOCOMMIT")


def _url_for(name: str) -> str:
    url = make_url(ADMIN_URL)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def template_db() -> Iterator[str]:
    admin = _admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{TEMPLATE}"')
    engine = db.make_engine(_url_for(TEMPLATE))
    db.upgrade(engine)
    engine.dispose()
    yield TEMPLATE
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
    admin.dispose()


def _scratch_database(prefix: str, template: str | None) -> Iterator[str]:
    """Create a database for one test (cloned from `template` when given), drop it afterwards."""
    name = f"{prefix}_{RUN}_{uuid.uuid4().hex[:10]}"
    admin = _admin()
    clause = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"{clause}')
    yield _url_for(name)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def pg_url(template_db: str) -> Iterator[str]:
    """A migrated, empty PostgreSQL database for this test only."""
    yield from _scratch_database("automation_t", template_db)


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    """A PostgreSQL database with no schema at all."""
    yield from _scratch_database("automation_e", None)


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    eng = db.make_engine(pg_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return db.sessions(engine)


@pytest.fixture
def redis_namespace() -> Iterator[str]:
    """A Redis key namespace for this test; its keys are deleted afterwards."""
    namespace = f"automation-test-{RUN}-{uuid.uuid4().hex[:8]}"
    yield namespace
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{namespace}*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
def sendgrid() -> Iterator[SendGridStandIn]:
    standin = SendGridStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    standin = TwilioStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def env(
    pg_url: str,
    redis_namespace: str,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """The environment a user would set, pointing at this test's database, Redis and stand-ins."""
    values = {
        "DATABASE_URL": pg_url,
        "REDIS_URL": REDIS_URL,
        "AUTOMATION_REDIS_NAMESPACE": redis_namespace,
        "SENDGRID_API_KEY": "SG.test-key",
        "SENDGRID_API_HOST": sendgrid.url,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "test-token",
        "TWILIO_API_BASE_URL": twilio.url,
        "AUTOMATION_SMS_FROM": "+15550000000",
        "AUTOMATION_JOURNEYS_DIR": str(ROOT / "journeys"),
        "AUTOMATION_TEMPLATES_DIR": str(ROOT / "templates"),
        "AUTOMATION_OUTBOX_DIR": str(tmp_path / "outbox"),
        "AUTOMATION_RETRY_MIN_BACKOFF_MS": "10",
        "AUTOMATION_RETRY_MAX_BACKOFF_MS": "200",
        # A real provider is configured, so the processes refuse unsafe production settings.
        "AUTOMATION_PUBLIC_URL": "https://hooks.example.com",
        "AUTOMATION_UNSUBSCRIBE_SECRET": "test-unsubscribe-secret-0123456789abcdef",
        "AUTOMATION_POSTAL_ADDRESS": "1 Roastery Lane, Portland OR 97201, USA",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return values


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings()
