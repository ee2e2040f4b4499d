"""The demo's generated data: seeded, and shaped so that every trigger kind comes due."""

from __future__ import annotations

import datetime as dt

from automation.core.programme import DEFAULT_TIERS
from automation.definitions.loader import load_journey_files
from automation.demo.data import generate
from tests.conftest import ROOT

START = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


def _dataset(seed: int = 7):  # type: ignore[no-untyped-def]
    loaded, problems = load_journey_files(ROOT / "tests" / "fixtures" / "lifecycle" / "journeys")
    assert not problems
    journeys = [item.journey for item in loaded]
    return generate(journeys, DEFAULT_TIERS, customers=200, start=START, days=10, seed=seed)


def test_same_seed_same_data() -> None:
    assert _dataset().history == _dataset().history
    assert _dataset().history != _dataset(seed=8).history


def test_every_trigger_kind_has_its_records_in_the_window() -> None:
    data = _dataset()
    identifies = [r for r in data.history if r["type"] == "identify"]
    assert len(identifies) == 200
    assert len({r["traits"]["timezone"] for r in identifies}) >= 8  # across time zones
    timeline = [r for hour in data.timeline.values() for r in hour]
    # tier changes arrive as identify records during the simulation
    assert sum(1 for r in timeline if r["type"] == "identify" and set(r["traits"]) == {"tier"}) >= 10
    assert sum(1 for r in timeline if r.get("event") == "order_placed") >= 30
    # anniversaries of sign-up and birthdays fall inside the window, in the customer's own zone
    window = {(START + dt.timedelta(days=d)).strftime("%m-%d") for d in range(11)}
    assert sum(1 for r in identifies if r["traits"]["signed_up_at"][5:10] in window) >= 10
    assert sum(1 for r in identifies if r["traits"]["birthday"][5:10] in window) >= 10
    # the lapsed: their last order sits 60 days before a moment inside the window
    last: dict[str, str] = {}
    for r in data.history:
        if r.get("event") == "order_placed":
            last[r["customer_id"]] = max(last.get(r["customer_id"], ""), r["timestamp"])
    lapsing = [
        c for c, ts in last.items()
        if START < dt.datetime.fromisoformat(ts) + dt.timedelta(days=60) < START + dt.timedelta(days=10)
    ]  # fmt: skip
    assert len(lapsing) >= 10
