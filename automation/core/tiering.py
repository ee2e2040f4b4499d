"""Tiers from a window measure: immediate upgrades, downgrades on the tier anniversary or at once. Pure.

The measure is the spend (order amounts less refunds) or the points earned (less
reversals) of the lots earned within the rolling window. An upgrade happens as
soon as the measure reaches a higher level. With `downgrade: {at: tier_anniversary}`
the tier is reviewed on each anniversary of reaching it, at local midnight in the
customer's time zone (29 February falls on 28 February in other years): a measure
below the tier then moves the customer down (one level with `one_step`, else to the
level the measure reaches). With `{at: immediately}` the move down happens whenever
the measure falls below the tier.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from automation.core.ledger import Lot
from automation.core.programme import Tiers


@dataclass(frozen=True)
class TierState:
    """The tier held, since when, and when it is next reviewed for a downgrade (None: not scheduled)."""

    tier: str | None = None
    since: dt.datetime | None = None
    review_at: dt.datetime | None = None


def measure(tiers: Tiers, lots: Iterable[Lot], now: dt.datetime) -> float:
    """The window measure at `now`: lots earned in (now - window, now]."""
    start = now - tiers.window
    total = 0.0
    for lot in lots:
        if not start < lot.earned_at <= now:
            continue
        if tiers.measure == "spend":
            total += lot.amount - lot.refunded_amount if lot.order_id is not None else 0.0
        else:
            total += lot.points - lot.reversed
    return total


def level_for(tiers: Tiers, value: float) -> str:
    """The highest level whose `min` the value reaches."""
    return [level.name for level in tiers.levels if value >= level.min][-1]


def anniversary(since: dt.datetime, years: int, zone: str | None) -> dt.datetime:
    """Local midnight, `years` after the local date of `since`, as a UTC instant."""
    tz = ZoneInfo(zone or "UTC")
    day = since.astimezone(tz).date()
    try:
        target = day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        target = day.replace(year=day.year + years, day=28)
    return dt.datetime.combine(target, dt.time(), tzinfo=tz).astimezone(dt.UTC)


def _reached(tiers: Tiers, tier: str, at: dt.datetime, zone: str | None) -> TierState:
    lowest = tier == tiers.order()[0]
    review = anniversary(at, 1, zone) if tiers.downgrade.at == "tier_anniversary" and not lowest else None
    return TierState(tier, at, review)


def decide(tiers: Tiers, state: TierState, value: float, now: dt.datetime, zone: str | None) -> TierState:
    """The tier state at `now` given the window measure `value` (the same state when nothing changes)."""
    order = tiers.order()
    target = level_for(tiers, value)
    if state.tier not in order:
        return _reached(tiers, target, now, zone)
    held, reach = order.index(state.tier), order.index(target)
    if reach > held:
        return _reached(tiers, target, now, zone)
    if tiers.downgrade.at == "immediately":
        if reach == held:
            return state
        return _reached(tiers, order[held - 1] if tiers.downgrade.one_step else target, now, zone)
    if state.review_at is None and held > 0:
        # A tier held from before the programme ran (an ingested trait): its first review is a year on.
        return TierState(state.tier, now, anniversary(now, 1, zone))
    if state.review_at is None or now < state.review_at:
        return state
    if reach == held:
        return TierState(state.tier, state.since, _next_review(state, now, zone))
    lower = order[held - 1] if tiers.downgrade.one_step else target
    return _reached(tiers, lower, state.review_at, zone)


def _next_review(state: TierState, now: dt.datetime, zone: str | None) -> dt.datetime:
    assert state.since is not None
    years = 1
    while (at := anniversary(state.since, years, zone)) <= now:
        years += 1
    return at


def keep_tier_by(tiers: Tiers, state: TierState, lots: Iterable[Lot]) -> float:
    """How much more of the measure, by the review, keeps the tier held (0 when it is kept already)."""
    if state.tier is None or state.review_at is None:
        return 0.0
    level = next(level for level in tiers.levels if level.name == state.tier)
    return _cents(level.min - measure(tiers, lots, state.review_at))


def at_risk(tiers: Tiers, state: TierState, lots: Iterable[Lot]) -> tuple[str, float] | None:
    """The tier the next review would move down to and the shortfall that keeps the held one, or None
    when no review is scheduled or the lots earned so far already keep the tier at it."""
    short = keep_tier_by(tiers, state, lots)
    if short <= 0 or state.review_at is None:
        return None
    order = tiers.order()
    held = order.index(state.tier) if state.tier in order else 0
    reached = level_for(tiers, measure(tiers, lots, state.review_at))
    lower = order[held - 1] if tiers.downgrade.one_step and held > 0 else reached
    return lower, short


def to_next_tier(tiers: Tiers, tier: str | None, value: float) -> tuple[str | None, float]:
    """The next tier above the one held and how much more of the measure reaches it (None at the top)."""
    order = tiers.order()
    held = order.index(tier) if tier in order else -1
    if held + 1 >= len(order):
        return None, 0.0
    level = tiers.levels[held + 1]
    return level.name, _cents(level.min - value)


def _cents(shortfall: float) -> float:
    """A shortfall as people read it: never below 0, to the cent (a sum of totals leaves binary noise)."""
    return max(0.0, round(shortfall, 2))
