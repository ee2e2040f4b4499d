"""Tier downgrades happen at the tick: one step on the tier anniversary, at local midnight of a
customer in a far time zone, or with `downgrade: {at: immediately}` as soon as the sliding
window drops the spend below the level; each with a `tier_changed` event saying from and to."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from automation.definitions.catalog import Catalog, load_catalog
from automation.ingest.load import ingest
from automation.processes.tick import tick
from automation.store.models import Customer, Event
from tests.harness import identify, track, utc

ROOT = Path(__file__).resolve().parents[2]


def tier_at(
    sessions: sessionmaker[Session], catalog: Catalog, cid: str, at: str
) -> tuple[str | None, list[tuple[str, str]]]:
    """Tick at `at`; the customer's tier then, and every tier change so far (from, to)."""
    tick(sessions.kw["bind"], sessions, catalog, utc(at), lambda ids: None)
    with sessions() as s:
        customer = s.get(Customer, cid)
        changes = [
            (e.properties["from"], e.properties["to"])
            for e in s.scalars(select(Event).where(Event.name == "tier_changed").order_by(Event.occurred_at))
        ]
        return (customer.tier if customer else None), changes


def test_the_tick_downgrades_one_step_at_local_midnight_of_the_tier_anniversary(
    sessions: sessionmaker[Session],
) -> None:
    catalog = load_catalog(ROOT / "journeys", ROOT / "templates")
    records = [
        identify("k1", "2026-01-01T00:00:00Z", email="k1@example.com", timezone="Pacific/Kiritimati"),
        # 12:00 UTC is already 6 January in Kiritimati (UTC+14): gold since that local day.
        track("k1", "order_placed", "2026-01-05T12:00:00Z", "o-1", total=600, order_id="o-1"),
    ]
    ingest(
        [json.dumps(r) for r in records],
        "f.jsonl",
        sessions,
        utc("2026-01-05T13:00:00Z"),
        programme=catalog.programme,
    )

    up = [("bronze", "gold")]  # a first order straight into gold: up from the lowest level
    # First anniversary (local midnight 6 January 2027 = 10:00 UTC on the 5th): 600 spent in the
    # last 365 days still holds gold, so the tier is kept for another year.
    assert tier_at(sessions, catalog, "k1", "2027-01-05T10:00:00Z") == ("gold", up)
    # Second anniversary: nothing spent in the window. Not yet at 09:59 UTC, one step down at 10:00.
    assert tier_at(sessions, catalog, "k1", "2028-01-05T09:59:00Z") == ("gold", up)
    assert tier_at(sessions, catalog, "k1", "2028-01-05T10:00:00Z") == ("silver", [*up, ("gold", "silver")])
    assert tier_at(sessions, catalog, "k1", "2028-01-06T10:00:00Z") == ("silver", [*up, ("gold", "silver")])


def test_with_downgrade_immediately_the_tick_downgrades_once_the_sliding_window_drops_the_spend(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    journeys = tmp_path / "journeys"
    shutil.copytree(ROOT / "journeys", journeys)
    loyalty = journeys / "loyalty.yaml"
    text = loyalty.read_text()
    assert "downgrade: {at: tier_anniversary, one_step: true}" in text
    loyalty.write_text(text.replace("{at: tier_anniversary, one_step: true}", "{at: immediately}"))
    # Without a review date the warning before one could never fire: the catalog refuses that journey.
    (journeys / "tier_at_risk.yaml").unlink()
    catalog = load_catalog(journeys, ROOT / "templates")
    records = [
        identify("w1", "2026-01-01T00:00:00Z", email="w1@example.com"),
        track("w1", "order_placed", "2026-01-02T10:00:00Z", "o-1", total=250, order_id="o-1"),
    ]
    ingest(
        [json.dumps(r) for r in records],
        "f.jsonl",
        sessions,
        utc("2026-01-02T11:00:00Z"),
        programme=catalog.programme,
    )

    up = [("bronze", "silver")]
    assert tier_at(sessions, catalog, "w1", "2027-01-02T09:00:00Z") == (
        "silver",
        up,
    )  # the order is still in the 365 days
    assert tier_at(sessions, catalog, "w1", "2027-01-02T11:00:00Z") == ("bronze", [*up, ("silver", "bronze")])
