"""`tier_will_downgrade` on PostgreSQL and SQLite: the shipped `tier_at_risk` journey warns thirty days
before a tier anniversary whose review would move the customer down, once, with the spend that keeps the
tier; and a first order straight into gold is a move up from the lowest level, which `tier_upgrade` welcomes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from automation.definitions.catalog import Catalog, load_catalog
from automation.ingest.load import ingest
from automation.insight.explain import explain
from automation.processes.tick import tick
from automation.store.models import Enrollment
from tests.harness import identify, track, utc

ROOT = Path(__file__).resolve().parents[2]


def _catalog() -> Catalog:
    return load_catalog(ROOT / "journeys", ROOT / "templates")


def _ingest(sessions: sessionmaker[Session], catalog: Catalog, *records: dict[str, Any]) -> None:
    result = ingest(
        [json.dumps(r) for r in records],
        "f.jsonl",
        sessions,
        utc("2026-03-02T00:00:00Z"),
        programme=catalog.programme,
    )
    assert result.rejected == []


def _entered(
    sessions: sessionmaker[Session], catalog: Catalog, journey: str, at: str
) -> list[tuple[str, str, dict[str, Any]]]:
    tick(sessions.kw["bind"], sessions, catalog, utc(at), lambda ids: None)
    with sessions() as s:
        rows = s.scalars(select(Enrollment).where(Enrollment.journey_id == journey).order_by(Enrollment.id))
        return [(e.customer_id, e.occurrence_key, e.context) for e in rows]


def _order(cid: str, oid: str, at: str, total: float) -> dict[str, Any]:
    return track(cid, "order_placed", at, oid, total=total, order_id=oid)


def _slipping(cid: str) -> list[dict[str, Any]]:
    """A customer who reaches silver (250) on 1 March 2026, 100 of it from a January order.

    By the review a year on, the January order has left the window: silver would be lost.
    """
    return [
        identify(cid, "2026-01-01T00:00:00Z", email=f"{cid}@example.com"),
        _order(cid, "o-1", "2026-01-02T10:00:00Z", 100),
        _order(cid, "o-2", "2026-03-01T10:00:00Z", 150),
    ]


def test_tier_at_risk_warns_once_thirty_days_before_an_anniversary_that_would_move_the_customer_down(
    either_database: sessionmaker[Session],
) -> None:
    catalog = _catalog()
    _ingest(
        either_database,
        catalog,
        *_slipping("r1"),
        identify("k1", "2026-01-01T00:00:00Z", email="k1@example.com"),
        # k1 reaches silver the same day with one order, which still counts at the review.
        _order("k1", "o-3", "2026-03-01T10:00:00Z", 250),
    )
    # The review is at midnight UTC on 1 March 2027; the warning 30 days before it.
    assert _entered(either_database, catalog, "tier_at_risk", "2027-01-29T23:59:00Z") == []
    warned = [
        (
            "r1",
            "2027-03-01",
            {"tier": "silver", "downgrade_to": "bronze", "downgrade_on": "2027-03-01", "keep_tier_by": 50.0},
        )
    ]
    assert _entered(either_database, catalog, "tier_at_risk", "2027-01-30T00:00:00Z") == warned
    assert _entered(either_database, catalog, "tier_at_risk", "2027-02-10T00:00:00Z") == warned


def test_a_warning_older_than_the_lookback_never_enters_and_explain_says_when_it_is_due(
    either_database: sessionmaker[Session],
) -> None:
    catalog = _catalog()
    _ingest(
        either_database,
        catalog,
        *_slipping("r2"),
    )
    with either_database() as s:
        early = explain(
            s, catalog.journeys["tier_at_risk"], catalog, "r2", utc("2027-01-01T00:00:00Z"), "UTC"
        )
    assert not early.enters
    assert "trigger not met: the warning is due at 2027-01-30T00:00:00+00:00" in early.lines
    # Three days after the warning came due (the look-back) the first tick is too late.
    assert _entered(either_database, catalog, "tier_at_risk", "2027-02-02T00:00:01Z") == []


def test_a_first_order_straight_into_gold_is_welcomed_as_a_move_up_from_bronze(
    either_database: sessionmaker[Session],
) -> None:
    catalog = _catalog()
    _ingest(
        either_database,
        catalog,
        identify("g1", "2026-03-01T00:00:00Z", email="g1@example.com", email_opt_in=True),
        _order("g1", "o-1", "2026-03-01T10:00:00Z", 600),
    )
    entered = _entered(either_database, catalog, "tier_upgrade", "2026-03-01T11:00:00Z")
    assert [(cid, ctx) for cid, _key, ctx in entered] == [("g1", {"old_tier": "bronze", "new_tier": "gold"})]
