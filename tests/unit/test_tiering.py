"""Tiers: immediate upgrades, downgrades on the tier anniversary in the customer's zone, or at once."""

from __future__ import annotations

import datetime as dt

import pytest

from automation.core.ledger import Lot
from automation.core.programme import Tiers
from automation.core.tiering import (
    TierState,
    anniversary,
    at_risk,
    decide,
    keep_tier_by,
    measure,
    to_next_tier,
)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def tiers(at: str = "tier_anniversary", one_step: bool = True) -> Tiers:
    return Tiers.model_validate(
        {
            "window": "365d",
            "levels": [{"name": n, "min": m} for n, m in (("bronze", 0), ("silver", 200), ("gold", 500))],
            "downgrade": {"at": at, "one_step": one_step},
        }
    )


def order(at: str, amount: float, refunded: float = 0) -> Lot:
    return Lot(at, utc(at), int(amount), utc(at), None, "order_placed", at, amount, refunded)


def test_the_measure_is_the_spend_in_the_window_less_refunds() -> None:
    lots = [order("2025-01-01T00:00", 400), order("2025-06-01T00:00", 300, refunded=100)]
    assert measure(tiers(), lots, utc("2025-12-01T00:00")) == 600
    assert measure(tiers(), lots, utc("2026-03-01T00:00")) == 200


def test_an_upgrade_is_immediate_and_schedules_the_review_a_year_on() -> None:
    state = decide(tiers(), TierState("bronze"), 520, utc("2026-03-10T15:00"), "UTC")
    assert state == TierState("gold", utc("2026-03-10T15:00"), utc("2027-03-10T00:00"))


@pytest.mark.parametrize(
    ("since", "zone", "review"),
    [
        # 23:30 UTC on 10 March is already 11 March in Tokyo: the review is at Tokyo midnight.
        ("2026-03-10T23:30", "Asia/Tokyo", "2027-03-10T15:00"),
        # ... and still 10 March in Los Angeles (UTC-8 in winter, UTC-7 by March 2027's DST).
        ("2026-03-10T23:30", "America/Los_Angeles", "2027-03-10T08:00"),
        # 29 February falls on 28 February in a year without one.
        ("2028-02-29T12:00", "UTC", "2029-02-28T00:00"),
    ],
)
def test_the_tier_anniversary_is_local_midnight_in_the_customers_zone(
    since: str, zone: str, review: str
) -> None:
    assert anniversary(utc(since), 1, zone) == utc(review)


def test_a_downgrade_waits_for_the_anniversary_and_moves_one_step() -> None:
    held = TierState("gold", utc("2026-03-10T15:00"), utc("2027-03-10T00:00"))
    assert decide(tiers(), held, 0, utc("2027-03-09T23:59"), "UTC") == held
    down = decide(tiers(), held, 0, utc("2027-03-10T00:00"), "UTC")
    assert down == TierState("silver", utc("2027-03-10T00:00"), utc("2028-03-10T00:00"))
    kept = decide(tiers(), held, 600, utc("2027-03-10T00:00"), "UTC")
    assert kept == TierState("gold", held.since, utc("2028-03-10T00:00"))


def test_downgrade_immediately_follows_the_measure_down() -> None:
    held = TierState("gold", utc("2026-03-10T15:00"))
    assert (
        decide(tiers("immediately", one_step=False), held, 10, utc("2026-04-01T00:00"), "UTC").tier
        == "bronze"
    )
    assert decide(tiers("immediately"), held, 10, utc("2026-04-01T00:00"), "UTC").tier == "silver"


def test_progress_to_the_next_tier_and_what_keeps_the_tier() -> None:
    assert to_next_tier(tiers(), "silver", 320) == ("gold", 180)
    assert to_next_tier(tiers(), "gold", 900) == (None, 0)
    # 164.35 is a sum of order totals; 200 - 164.35 in binary is 35.650000000000006.
    assert to_next_tier(tiers(), "bronze", 164.35) == ("silver", 35.65)
    held = TierState("gold", utc("2026-03-10T15:00"), utc("2027-03-10T00:00"))
    lots = [order("2026-03-01T15:00", 520)]
    # By the review the order of 1 March 2026 has left the window: 500 more keeps gold.
    assert keep_tier_by(tiers(), held, lots) == 500


REVIEW = utc("2027-03-01T00:00")
GOLD = TierState("gold", utc("2026-03-01T10:00"), REVIEW)


@pytest.mark.parametrize(
    ("state", "lots", "one_step", "expected"),
    [
        # 400 of the 520 that reached gold left the window by the review: 380 short of gold's 500.
        (GOLD, [order("2026-01-02T10:00", 400), order("2026-03-01T10:00", 120)], True, ("silver", 380)),
        # Without one_step the review moves to the level the measure reaches.
        (GOLD, [order("2026-01-02T10:00", 400), order("2026-03-01T10:00", 120)], False, ("bronze", 380)),
        # What counts at the review keeps the tier: no warning.
        (GOLD, [order("2026-03-01T10:00", 520)], True, None),
        # No review scheduled (the lowest tier, or `at: immediately`): no warning.
        (TierState("bronze", utc("2026-03-01T10:00"), None), [], True, None),
    ],
)
def test_a_tier_is_at_risk_when_the_lots_so_far_do_not_keep_it_at_the_review(
    state: TierState, lots: list[Lot], one_step: bool, expected: tuple[str, float] | None
) -> None:
    assert at_risk(tiers(one_step=one_step), state, lots) == expected
