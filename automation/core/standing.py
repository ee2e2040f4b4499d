"""What templates see of a customer's loyalty: `loyalty.points`, `loyalty.tier`, ... Pure.

The balance and pending points are the ledger's; the expiring points are the
points left in the lots that expire next, on the same (UTC) day, after `at`;
the tier progress is measured at `at`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from automation.core.ledger import Ledger
from automation.core.programme import Programme
from automation.core.tiering import TierState, keep_tier_by, measure, to_next_tier

#: What a template sees without a programme (or for a customer the ledger has never seen).
EMPTY: dict[str, Any] = {
    "points": 0,
    "pending_points": 0,
    "expiring_points": 0,
    "expiring_on": None,
    "tier": None,
    "next_tier": None,
    "to_next_tier": 0,
    "keep_tier_by": 0,
    "multiplier": 1.0,
}


def expiring_next(ledger: Ledger, at: dt.datetime) -> tuple[int, dt.date | None]:
    """The points left in the active lots that expire next after `at`, on that (UTC) day, and the day."""
    soon = sorted(
        (
            lot
            for lot in ledger.lots
            if lot.active and lot.remaining > 0 and lot.expires_at and lot.expires_at > at
        ),
        key=lambda lot: lot.order(),
    )
    day = soon[0].expires_at.date() if soon and soon[0].expires_at else None
    return sum(lot.remaining for lot in soon if lot.expires_at and lot.expires_at.date() == day), day


def standing(programme: Programme | None, ledger: Ledger, tier: TierState, at: dt.datetime) -> dict[str, Any]:
    """The `loyalty` template variable of one customer at `at`."""
    if programme is None or programme.points is None:
        return dict(EMPTY)
    points, day = expiring_next(ledger, at)
    out = {
        **EMPTY,
        "points": ledger.spendable(),
        "pending_points": ledger.pending(),
        "expiring_points": points,
        "expiring_on": day.isoformat() if day else None,
        "tier": tier.tier,
        "multiplier": programme.multiplier(tier.tier),
    }
    tiers = programme.tiers
    if tiers is not None:
        out["next_tier"], out["to_next_tier"] = to_next_tier(
            tiers, tier.tier, measure(tiers, ledger.lots, at)
        )
        out["keep_tier_by"] = keep_tier_by(tiers, tier, ledger.lots)
    return out
