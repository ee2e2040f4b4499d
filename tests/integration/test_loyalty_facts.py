"""The loyalty facts `points`, `pending_points` and `expiring_points` in filters: the same customers on
PostgreSQL and SQLite and in `journeys explain`'s reading, 0 for a customer without an account; and the
migration that adds them fills them in for accounts written before it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from automation.definitions.loader import load_programme, parse_filter
from automation.ingest.load import ingest
from automation.insight.explain import holds
from automation.loyalty.tick import advance_accounts
from automation.store import db
from automation.store.filter_sql import compile_filter
from automation.store.models import Customer, LoyaltyAccount
from tests.harness import identify, track, utc

ROOT = Path(__file__).resolve().parents[2]
NOW = utc("2026-03-01T12:00:00Z")
RECORDS = [
    identify("f1", "2026-01-01T00:00:00Z", email="f1@example.com"),
    identify("f2", "2026-01-01T00:00:00Z", email="f2@example.com"),
    identify("f3", "2026-01-01T00:00:00Z", email="f3@example.com"),
    # Active since 16 January; 120 points expire on 2 January 2027, 30 more on the 3rd.
    track("f1", "order_placed", "2026-01-02T10:00:00Z", "o-1", total=120, order_id="o-1"),
    track("f1", "order_placed", "2026-01-03T10:00:00Z", "o-2", total=30, order_id="o-2"),
    track("f1", "points_redeemed", "2026-02-01T10:00:00Z", "r-1", points=20, reward="mug"),
    # Still in the 14-day return window on 1 March.
    track("f2", "order_placed", "2026-02-25T10:00:00Z", "o-3", total=80, order_id="o-3"),
]
CASES = [
    ("{fact: points, gte: 100}", ["f1"]),
    ("{fact: points, eq: 130}", ["f1"]),
    ("{fact: pending_points, gt: 0}", ["f2"]),
    ("{fact: expiring_points, eq: 100}", ["f1"]),  # the first lot after FIFO spent 20 of it
    ("{fact: points, eq: 0}", ["f2", "f3"]),  # no account reads as 0
    ("{not: {fact: points, gt: 0}}", ["f2", "f3"]),
    ("{any: [{fact: pending_points, gte: 80}, {fact: expiring_points, gte: 1}]}", ["f1", "f2"]),
]


@pytest.fixture(params=["postgresql", "sqlite"])
def loaded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/f.db"
    engine = db.make_engine(url)
    db.upgrade(engine)
    sessions = db.sessions(engine)
    programme, problems = load_programme(ROOT / "journeys")
    assert problems == []
    result = ingest([json.dumps(r) for r in RECORDS], "f.jsonl", sessions, NOW, programme=programme)
    assert result.rejected == []
    advance_accounts(sessions, programme, NOW)
    yield sessions
    engine.dispose()


def test_loyalty_facts_pick_the_same_customers_in_sql_and_in_explain(loaded: sessionmaker[Session]) -> None:
    found, explained = {}, {}
    with loaded() as s:
        for where, _expected in CASES:
            f = parse_filter(where, "--where")
            found[where] = list(s.scalars(select(Customer.id).where(compile_filter(f)).order_by(Customer.id)))
            explained[where] = [cid for cid in ("f1", "f2", "f3") if holds(s, cid, f)]
    assert found == dict(CASES)
    assert explained == dict(CASES)


def test_the_migration_fills_the_facts_of_accounts_written_before_it(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    for url in (request.getfixturevalue("empty_pg_url"), f"sqlite:///{tmp_path}/old.db"):
        engine = db.make_engine(url)
        cfg = db.alembic_config(engine)
        command.upgrade(cfg, "coupons")
        at = dt.datetime(2026, 3, 1, 12)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO loyalty_accounts (customer_id, debt, clock, updated_at)"
                    " VALUES ('m1', 5, :at, :at), ('m2', 0, NULL, :at)"
                ),
                {"at": at},
            )
            lots = [
                ("a", True, 40, dt.datetime(2026, 6, 1, 9)),
                ("b", True, 25, dt.datetime(2026, 6, 1, 23)),
                ("c", True, 70, dt.datetime(2026, 6, 2, 9)),
                ("d", False, 15, dt.datetime(2026, 7, 1)),
                ("e", True, 0, dt.datetime(2026, 5, 1)),
            ]
            for key, active, remaining, expires in lots:
                conn.execute(
                    text(
                        "INSERT INTO loyalty_lots (customer_id, key, event, earned_at, activates_at, expires_at,"
                        " points, remaining, spent, expired, reversed, cancelled, active, amount, refunded_amount)"
                        " VALUES ('m1', :key, 'order_placed', :at, :at, :expires, 100, :remaining, 0, 0, 0, 0,"
                        " :active, 0, 0)"
                    ),
                    {"key": key, "at": at, "expires": expires, "remaining": remaining, "active": active},
                )
        command.upgrade(cfg, "head")
        with db.sessions(engine)() as s:
            got = {
                a.customer_id: (a.points, a.pending_points, a.expiring_points)
                for a in s.scalars(select(LoyaltyAccount))
            }
        engine.dispose()
        # 135 active less a debt of 5; lots a and b expire on 1 June (UTC), the first day after the clock.
        assert got == {"m1": (130, 15, 65), "m2": (0, 0, 0)}, url
