"""What `automation loyalty` does: a customer's summary, manual adjustments, recompute and simulate.

`replay.replay` rebuilds accounts from the stored events (and the manual
adjustments, which are causes of their own) in the order they happened, then
brings them to `now` as the tick would; `recompute` compares that with what is
stored, and `simulate` compares what another programme would make of the same events.
Neither writes anything.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from automation.core.programme import Programme
from automation.core.tiering import measure, to_next_tier
from automation.errors import UserError
from automation.loyalty.accounts import Account, applied, load, save
from automation.loyalty.replay import Stored, replay
from automation.store.models import Customer, LoyaltyTransaction


def _points(programme: Programme | None) -> Programme:
    if programme is None or programme.points is None:
        raise UserError("no loyalty programme: journeys/loyalty.yaml defines no `points`")
    return programme


def summary(
    session: Session, programme: Programme | None, customer_id: str, now: dt.datetime, last: int = 10
) -> dict[str, Any]:
    """Balance, pending, lots and their expiry, tier and progress, and the last transactions."""
    programme = _points(programme)
    if session.get(Customer, customer_id) is None:
        raise UserError(f"no customer {customer_id!r}")
    account = load(session, {customer_id: None})[customer_id]
    ledger = account.ledger
    txns = session.scalars(
        select(LoyaltyTransaction)
        .where(LoyaltyTransaction.customer_id == customer_id)
        .order_by(LoyaltyTransaction.id.desc())
        .limit(last)
    )
    out: dict[str, Any] = {
        "customer_id": customer_id,
        "points": ledger.spendable(),
        "pending_points": ledger.pending(),
        "debt": ledger.debt,
        "tier": account.tier.tier,
        "lots": [
            {
                "lot": lot.key,
                "points": lot.points,
                "left": lot.remaining,
                "state": "active" if lot.active else "pending",
                "activates_at": lot.activates_at,
                "expires_at": lot.expires_at,
            }
            for lot in sorted(ledger.lots, key=lambda x: x.order())
            if lot.remaining > 0
        ],
        "transactions": [
            {"at": t.at, "kind": t.kind, "points": t.points, "key": t.key, "detail": t.detail} for t in txns
        ],
    }
    if programme.tiers is not None:
        value = measure(programme.tiers, ledger.lots, now)
        out["next_tier"], out["to_next_tier"] = to_next_tier(programme.tiers, account.tier.tier, value)
        out["tier_review_at"] = account.tier.review_at
    return out


def adjust(
    sessions: sessionmaker[Session],
    programme: Programme | None,
    customer_id: str,
    points: int,
    reason: str,
    key: str,
    now: dt.datetime,
) -> bool:
    """A manual change of points, once per `key`; False when the key was already applied."""
    programme = _points(programme)
    assert programme.points is not None
    with sessions.begin() as session:
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise UserError(f"no customer {customer_id!r}")
        if applied(session, [(customer_id, f"adjust:{key}")]):
            return False
        account = load(session, {customer_id: customer.timezone})[customer_id]
        expire = programme.points.expire
        account.txns += account.ledger.adjust(
            key, points, now, expire.expires_at(now) if expire else None, reason
        )
        save(session, [account], now)
    return True


def differences(rebuilt: Account, stored: Stored) -> list[str]:
    """How a stored account differs from its rebuilt one (none is the expected answer)."""
    out = []
    pairs = {
        "points": (rebuilt.ledger.spendable(), stored.points),
        "pending_points": (rebuilt.ledger.pending(), stored.pending_points),
        "debt": (rebuilt.ledger.debt, stored.debt),
        "tier": (rebuilt.tier.tier, stored.tier),
        "lots": (len(rebuilt.ledger.lots), stored.lots),
    }
    for name, (want, got) in pairs.items():
        if want != got:
            out.append(f"{rebuilt.customer_id}: {name} is {got} stored, {want} from the events")
    return out


def earned(account: Account) -> int:
    """Points the account's earning lots were given (adjustments left out)."""
    return sum(lot.points for lot in account.ledger.lots if lot.event != "adjustment")


@dataclass
class Simulation:
    customers: int = 0
    up: int = 0
    down: int = 0
    points_now: int = 0
    points_then: int = 0


def simulate(sessions: sessionmaker[Session], changed: Programme, now: dt.datetime) -> Simulation:
    """What `changed` would make of today's events, beside what is stored; nothing is written."""
    result = Simulation()
    order = changed.tier_order()
    for account, stored in replay(sessions, _points(changed), now):
        result.customers += 1
        before, after = stored.tier, account.tier.tier
        if before in order and after in order and before != after:
            if order.index(after) > order.index(before):
                result.up += 1
            else:
                result.down += 1
        result.points_now += stored.earned
        result.points_then += earned(account)
    return result
