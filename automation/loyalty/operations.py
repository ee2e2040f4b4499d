"""What `automation loyalty` does: a customer's summary, manual adjustments, recompute and simulate.

`replay` rebuilds accounts from the stored events (and the manual adjustments,
which are causes of their own) in the order they happened, then brings them to
`now` as the tick would; `recompute` compares that with what is stored, and
`simulate` compares what another programme would make of the same events.
Neither writes anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from automation.core.earning import BIRTHDAY_EVENT
from automation.core.ledger import Ledger, TxnKind
from automation.core.programme import Programme
from automation.core.records import Track
from automation.core.tiering import TierState, measure, to_next_tier
from automation.errors import PointsRefusal, UserError
from automation.loyalty.accounts import Account, applied, load, save
from automation.loyalty.events import Outcome, apply_one, relevant, retier
from automation.store.models import Customer, Event, LoyaltyAccount, LoyaltyTransaction

PAGE = 1000


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


@dataclass
class Replayed:
    """Accounts rebuilt from the events, and the events the ledger refused along the way."""

    accounts: dict[str, Account] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


def _customer_pages(session: Session, names: list[str], customer: str | None) -> Iterator[list[str]]:
    if customer is not None:
        yield [customer]
        return
    with_events = select(Event.customer_id).where(Event.name.in_(names))
    ids = sorted(
        set(session.scalars(with_events.distinct()))
        | set(session.scalars(select(LoyaltyAccount.customer_id)))
    )
    for n in range(0, len(ids), PAGE):
        yield ids[n : n + PAGE]


class _Adjustment(NamedTuple):
    customer_id: str
    key: str
    points: int
    at: dt.datetime


def _causes(
    session: Session, programme: Programme, ids: list[str]
) -> list[tuple[dt.datetime, int, Track | _Adjustment]]:
    """Every event and adjustment of these customers, in the order they happened (plain rows: a
    full recompute reads every event of the programme)."""
    names = _names(programme)
    events = session.execute(
        select(
            Event.occurred_at, Event.id, Event.customer_id, Event.name, Event.event_key, Event.properties
        ).where(Event.customer_id.in_(ids), Event.name.in_(names))
    )
    adjustments = session.execute(
        select(
            LoyaltyTransaction.at,
            LoyaltyTransaction.id,
            LoyaltyTransaction.customer_id,
            LoyaltyTransaction.key,
            LoyaltyTransaction.points,
        ).where(LoyaltyTransaction.customer_id.in_(ids), LoyaltyTransaction.kind == TxnKind.ADJUST.value)
    )
    causes: list[tuple[dt.datetime, int, Track | _Adjustment]] = [
        (at, eid, Track(cid, name, key, at, props)) for at, eid, cid, name, key, props in events
    ]
    causes += [(at, tid, _Adjustment(cid, key, points, at)) for at, tid, cid, key, points in adjustments]
    return sorted(causes, key=lambda c: (c[0], c[1]))


def _names(programme: Programme) -> list[str]:
    points = programme.points
    assert points is not None
    return [r.event for r in points.earn if r.event] + [
        points.redeem_event,
        points.refund_event,
        BIRTHDAY_EVENT,
    ]


def replay(
    sessions: sessionmaker[Session], programme: Programme, now: dt.datetime, customer: str | None = None
) -> Iterator[tuple[Replayed, dict[str, Account]]]:
    """Per page of customers: the accounts rebuilt from their causes, and the accounts as stored."""
    programme = _points(programme)
    with sessions() as session:
        for ids in _customer_pages(session, _names(programme), customer):
            zones = dict(
                session.execute(select(Customer.id, Customer.timezone).where(Customer.id.in_(ids))).all()
            )
            stored = load(session, {cid: zones.get(cid) for cid in ids})
            rebuilt = Replayed({cid: Account(cid, Ledger(), TierState(), zones.get(cid)) for cid in ids})
            out = Outcome()
            for _at, _id, cause in _causes(session, programme, ids):
                account = rebuilt.accounts[cause.customer_id]
                if isinstance(cause, _Adjustment):
                    expire = programme.points.expire if programme.points else None
                    until = expire.expires_at(cause.at) if expire else None
                    account.ledger.adjust(
                        cause.key.removeprefix("adjust:"), cause.points, cause.at, until, ""
                    )
                    continue
                if relevant(programme, cause.event):
                    try:
                        apply_one(programme, account, cause, out)
                    except PointsRefusal as exc:
                        rebuilt.refused.append(f"{cause.customer_id}: {cause.event_key}: {exc}")
            for account in rebuilt.accounts.values():
                account.ledger.advance(now)
                retier(programme, account, now, out)
            session.rollback()
            yield rebuilt, stored


def differences(rebuilt: Account, stored: Account) -> list[str]:
    """How a stored account differs from its rebuilt one (none is the expected answer)."""
    out = []
    pairs = {
        "points": (rebuilt.ledger.spendable(), stored.ledger.spendable()),
        "pending_points": (rebuilt.ledger.pending(), stored.ledger.pending()),
        "debt": (rebuilt.ledger.debt, stored.ledger.debt),
        "tier": (rebuilt.tier.tier, stored.tier.tier),
        "lots": (len(rebuilt.ledger.lots), len(stored.ledger.lots)),
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
    for rebuilt, stored in replay(sessions, changed, now):
        for cid, account in rebuilt.accounts.items():
            result.customers += 1
            before, after = stored[cid].tier.tier, account.tier.tier
            if before in order and after in order and before != after:
                if order.index(after) > order.index(before):
                    result.up += 1
                else:
                    result.down += 1
            result.points_now += earned(stored[cid])
            result.points_then += earned(account)
    return result
