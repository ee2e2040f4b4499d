"""`/healthz` (database, Redis, last tick), cached ledger metrics, the last-tick metric, page headers.

In-process on real PostgreSQL and Redis with the web clock passed in; then the
scheduler and web processes as a user runs them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from automation.config import Settings, load_settings
from automation.core.tokens import unsubscribe_token
from automation.insight.metrics import LedgerCollector
from automation.store import db
from automation.store.heartbeats import last_tick, record_tick
from automation.web.app import create_app
from automation.web.security_headers import CONTENT_SECURITY_POLICY
from tests.harness import BIN, cli
from tests.integration.test_web import NOW, seed
from tests.integration.test_web_process import free_port, scrape_until, start, stop, wait_for

INTERVAL = dt.timedelta(seconds=60)


@pytest.fixture
def web_settings(env: dict[str, str]) -> Settings:
    return load_settings()


@pytest.fixture
def client(web_settings: Settings, sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    with TestClient(create_app(web_settings, sessions, clock=lambda: NOW)) as c:
        yield c


def beat(sessions: sessionmaker[Session], at: dt.datetime) -> None:
    with sessions.begin() as s:
        record_tick(s, at)


def test_healthz_is_503_until_a_tick_is_recorded(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "ok",
        "redis": "ok",
        "tick": "never",
        "last_tick_at": None,
        "last_tick_age_s": None,
    }


@pytest.mark.parametrize(
    ("age", "status", "tick"),
    [
        (dt.timedelta(seconds=5), 200, "ok"),
        (3 * INTERVAL, 200, "ok"),
        (3 * INTERVAL + dt.timedelta(seconds=1), 503, "stale"),
        (dt.timedelta(days=2), 503, "stale"),
    ],
)
def test_healthz_judges_the_last_tick_by_three_intervals(
    client: TestClient, sessions: sessionmaker[Session], age: dt.timedelta, status: int, tick: str
) -> None:
    beat(sessions, NOW - age)
    response = client.get("/healthz")
    assert response.status_code == status
    body = response.json()
    assert (body["status"], body["database"], body["redis"], body["tick"]) == (
        "ok" if status == 200 else "unavailable",
        "ok",
        "ok",
        tick,
    )
    assert body["last_tick_at"] == (NOW - age).isoformat().replace("+00:00", "Z")
    assert body["last_tick_age_s"] == age.total_seconds()


def test_a_tick_instant_never_moves_back(sessions: sessionmaker[Session]) -> None:
    beat(sessions, NOW)
    beat(sessions, NOW - dt.timedelta(hours=1))
    with sessions() as s:
        assert last_tick(s) == NOW


def test_healthz_reports_redis_down(
    env: dict[str, str], sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    beat(sessions, NOW)
    with TestClient(create_app(load_settings(), sessions, clock=lambda: NOW)) as c:
        response = c.get("/healthz")
    assert response.status_code == 503
    assert (response.json()["redis"], response.json()["tick"]) == ("unavailable", "ok")


def test_healthz_reports_the_database_down(env: dict[str, str]) -> None:
    unreachable = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    with TestClient(create_app(load_settings(), db.sessions(unreachable), clock=lambda: NOW)) as c:
        response = c.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"
    assert response.json()["tick"] == "unknown"


def ledger_reads(engine: Engine) -> list[str]:
    """Every GROUP BY the engine runs from now on."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "GROUP BY" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    return seen


def test_scrapes_read_the_ledger_at_most_once_per_max_age(
    client: TestClient, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    reads = ledger_reads(engine)
    assert client.get("/metrics").status_code == 200
    # One pass: the ledgers folded, then one read each: deliveries, provider events, coupons by
    # pool, coupons left.
    one_pass = list(reads)
    for _ in range(4):
        assert client.get("/metrics").status_code == 200
    assert any("FROM delivery_tallies" in r for r in one_pass)
    assert reads == one_pass


def test_the_ledger_cache_expires_after_its_max_age(engine: Engine, sessions: sessionmaker[Session]) -> None:
    clock = [100.0]
    collector = LedgerCollector(sessions, None, "unused", max_age_s=5, clock=lambda: clock[0])
    assert collector.figures().deliveries == []
    seed(sessions)
    clock[0] += 4.9
    assert collector.figures().deliveries == []  # still the cached read
    clock[0] += 0.1
    assert collector.figures().deliveries == [("post_purchase_thanks", "email", "sent", 1)]


def test_metrics_export_the_last_tick(client: TestClient, sessions: sessionmaker[Session]) -> None:
    assert "automation_last_tick_timestamp_seconds" not in client.get("/metrics").text
    beat(sessions, NOW)
    with TestClient(create_app(load_settings(), sessions, clock=lambda: NOW)) as fresh:
        text = fresh.get("/metrics").text
    assert last_tick_metric(text) == NOW.timestamp()


def last_tick_metric(text: str) -> float:
    [family] = [
        f for f in text_string_to_metric_families(text) if f.name == "automation_last_tick_timestamp_seconds"
    ]
    return float(family.samples[0].value)


def test_unsubscribe_pages_refuse_framing_and_carry_a_csp(
    client: TestClient, web_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    token = unsubscribe_token(seed(sessions), web_settings.unsubscribe_secret.get_secret_value())
    for response in (
        client.get(f"/unsubscribe/{token}"),
        client.post(f"/unsubscribe/{token}"),
        client.get("/unsubscribe/nonsense"),
    ):
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_a_wall_clock_tick_records_its_instant_and_a_back_fill_does_not(
    env: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    assert cli("tick", "--now", "2026-11-22T12:00:00Z").returncode == 0
    with sessions() as s:
        assert last_tick(s) is None
    before = dt.datetime.now(dt.UTC)
    assert cli("tick").returncode == 0
    with sessions() as s:
        recorded = last_tick(s)
    assert recorded is not None and before <= recorded <= dt.datetime.now(dt.UTC)


def test_the_running_scheduler_makes_the_web_process_healthy(env: dict[str, str]) -> None:
    web_port, metrics_port = free_port(), free_port()
    web = start([str(BIN), "web", "--host", "127.0.0.1", "--port", str(web_port)], env)
    scheduler = None
    try:
        health = f"http://127.0.0.1:{web_port}/healthz"
        first = wait_for(lambda: httpx.get(health, timeout=5))
        assert (first.status_code, first.json()["tick"]) == (503, "never")
        scheduler = start([str(BIN), "scheduler"], {**env, "AUTOMATION_METRICS_PORT": str(metrics_port)})
        healthy = wait_for(lambda: (r := httpx.get(health, timeout=5)).status_code == 200 and r)
        assert healthy.json()["tick"] == "ok"
        text = scrape_until(metrics_port, "automation_last_tick_timestamp_seconds ")
        assert abs(last_tick_metric(text) - time.time()) < 60
    finally:
        if scheduler is not None:
            stop(scheduler)
        stop(web)
