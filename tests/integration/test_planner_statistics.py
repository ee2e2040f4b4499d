"""A bulk write leaves PostgreSQL's planner statistics current, so what follows is not planned as empty.

Before, a campaign enrolled into tables whose last ANALYZE saw them empty, and
completing its enrollments was planned as a loop over every delivery per
enrollment: minutes for 20,000 rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import sessionmaker

from automation.advance.send import Queued
from automation.campaigns import campaign as campaigns
from automation.definitions.catalog import load_catalog
from automation.processes.tick import tick
from automation.store import db, statistics
from automation.store.db import upgrade
from tests.conftest import ROOT
from tests.harness import utc
from tests.integration.test_campaign_scale import _many_customers

LAUNCH = utc("2026-11-23T10:00:00Z")
AUDIENCE = 2 * statistics.MIN_ROWS


def _believed(engine: Engine, table: str) -> float:
    with engine.connect() as conn:
        return float(conn.scalar(text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": table}))


def test_a_campaign_and_the_tick_after_it_leave_the_statistics_current(engine: Engine, sessions) -> None:
    _many_customers(engine, AUDIENCE)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE enrollments"))
        conn.execute(text("ANALYZE deliveries"))
        conn.commit()
    assert _believed(engine, "enrollments") <= 0 and _believed(engine, "deliveries") <= 0
    catalog = load_catalog(ROOT / "journeys", ROOT / "templates")

    launched = campaigns.launch(sessions, catalog, "seasonal_offer", now=LAUNCH, launched_by="test")
    assert launched.enrolled == AUDIENCE
    assert _believed(engine, "enrollments") >= AUDIENCE / 2  # never off by more than half

    queued: list[Queued] = []

    def enqueue(batch: Sequence[Queued]) -> None:
        queued.extend(batch)

    report = tick(engine, sessions, catalog, LAUNCH, enqueue)
    assert report.deliveries == len(queued) == AUDIENCE
    assert _believed(engine, "deliveries") >= AUDIENCE / 2


def test_small_writes_and_sqlite_leave_the_statistics_alone(engine: Engine, sessions, tmp_path) -> None:
    with sessions.begin() as s:
        assert not statistics.keep_up(s, "deliveries", statistics.MIN_ROWS - 1)
        assert statistics.keep_up(s, "deliveries", statistics.MIN_ROWS)  # believed empty: refreshed
    lite = create_engine(f"sqlite:///{tmp_path / 'lite.db'}")
    upgrade(lite)
    with sessionmaker(lite).begin() as s:
        assert not statistics.keep_up(s, "deliveries", 10 * statistics.MIN_ROWS)


def test_an_engine_made_without_prepare_prepares_only_the_statements_that_ask(pg_url: str) -> None:
    """The web's engine plans each statement with its values, but keeps one plan for those marked
    `PREPARED` (lookups through unique indexes), on every connection that runs them."""
    engine = db.make_engine(pg_url, pre_ping=False, prepare=False)
    asks = text("SELECT 2 AS asked").execution_options(**{db.PREPARED: True})
    with engine.connect() as conn:
        for _ in range(20):  # well past psycopg's usual threshold of 5
            assert conn.execute(text("SELECT 1 AS plain")).scalar() == 1
            assert conn.execute(asks).scalar() == 2
        prepared = conn.execute(text("SELECT statement FROM pg_prepared_statements")).scalars().all()
    engine.dispose()
    assert prepared == ["SELECT 2 AS asked"]
