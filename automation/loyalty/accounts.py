"""Loading customers' ledgers and tiers from the store and writing back what changed.

An account is read whole (its lots, debt and tier) and locked on PostgreSQL, so
two writers of one customer take turns. Saving upserts the lots and the account
and appends the transactions; a transaction whose key the customer already has
is skipped, so replaying a cause changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from automation.core.ledger import Ledger, Lot, Txn
from automation.core.programme import Programme
from automation.core.standing import EMPTY, expiring_next, standing
from automation.core.tiering import TierState
from automation.store.models import Customer, LoyaltyAccount, LoyaltyLot, LoyaltyTransaction
from automation.store.sqlutil import among, upsert_many

_LOT_FIELDS = [f.name for f in dataclasses.fields(Lot)]
_MONEY = ("amount", "refunded_amount")


@dataclass
class Account:
    """One customer's ledger and tier as loaded, and the transactions made since."""

    customer_id: str
    ledger: Ledger
    tier: TierState
    zone: str | None
    txns: list[Txn] = field(default_factory=list)
    loaded: dict[str, tuple[Any, ...]] = field(default_factory=dict)


def _state(lot: Lot) -> tuple[Any, ...]:
    """A lot's values as loaded: `save` writes only the lots whose values moved since."""
    return tuple(lot.__dict__.values())


def lots_of(session: Session, wanted: list[str]) -> dict[str, list[Lot]]:
    """Every lot of these customers (an empty list for one without any), read without a lock.

    Plain tuples, not ORM objects: ingest, the tick and `recompute` read every lot of many accounts.
    """
    table = LoyaltyLot.__table__
    columns = [table.c.customer_id, *(table.c[name] for name in _LOT_FIELDS)]
    money = [_LOT_FIELDS.index(name) for name in _MONEY]
    lots: dict[str, list[Lot]] = {cid: [] for cid in wanted}
    query = select(*columns).where(among(session, table.c.customer_id, wanted))
    for cid, *values in session.execute(query).all():
        for n in money:
            values[n] = float(values[n])
        lots[cid].append(Lot(*values))
    return lots


def load(session: Session, zones: dict[str, str | None]) -> dict[str, Account]:
    """The accounts of these customers (by id, with their time zone), locked on PostgreSQL.

    A customer without an account gets an empty one holding the tier stored on the customer, if any.
    """
    wanted = sorted(zones)
    if not wanted:
        return {}
    tiers = dict(
        session.execute(select(Customer.id, Customer.tier).where(among(session, Customer.id, wanted))).all()
    )
    a = LoyaltyAccount.__table__.c
    query = (
        select(a.customer_id, a.debt, a.clock, a.tier, a.tier_since, a.tier_review_at)
        .where(among(session, a.customer_id, wanted))
        .order_by(a.customer_id)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    rows = {row[0]: row for row in session.execute(query)}
    lots = lots_of(session, wanted)
    out = {}
    for cid in wanted:
        row = rows.get(cid)
        if row is None:
            ledger, tier = Ledger(lots[cid]), TierState(tiers.get(cid))
        else:
            ledger, tier = Ledger(lots[cid], row[1], row[2]), TierState(row[3], row[4], row[5])
        loaded = {lot.key: _state(lot) for lot in lots[cid]}
        out[cid] = Account(cid, ledger, tier, zones[cid], loaded=loaded)
    return out


def next_at(account: Account) -> dt.datetime | None:
    """When the tick next has work for the account: an activation, an expiry or a tier review."""
    instants = [lot.activates_at for lot in account.ledger.lots if not lot.active]
    instants += [
        lot.expires_at for lot in account.ledger.lots if lot.remaining > 0 and lot.expires_at is not None
    ]
    if account.tier.review_at is not None:
        instants.append(account.tier.review_at)
    return min(instants, default=None)


def _lot_row(cid: str, lot: Lot) -> dict[str, Any]:
    # A lot's __dict__ holds exactly its fields (a plain dataclass): copied whole, not field by field.
    row: dict[str, Any] = {"customer_id": cid, **lot.__dict__}
    for name in _MONEY:
        row[name] = Decimal(str(round(row[name], 2)))
    return row


def save(session: Session, accounts: Iterable[Account], now: dt.datetime) -> None:
    """Write the changed lots, the accounts and their new transactions."""
    lots, rows, txns = [], [], []
    for a in accounts:
        lots += [
            _lot_row(a.customer_id, lot) for lot in a.ledger.lots if a.loaded.get(lot.key) != _state(lot)
        ]
        rows.append(
            {
                "customer_id": a.customer_id,
                "debt": a.ledger.debt,
                "clock": a.ledger.clock,
                "tier": a.tier.tier,
                "tier_since": a.tier.since,
                "tier_review_at": a.tier.review_at,
                "next_at": next_at(a),
                "points": a.ledger.spendable(),
                "pending_points": a.ledger.pending(),
                "expiring_points": expiring_next(a.ledger, now)[0],
                "updated_at": now,
            }
        )
        txns += [
            {
                "customer_id": a.customer_id,
                "key": t.key[:260],
                "kind": t.kind.value,
                "points": t.points,
                "at": t.at,
                "lot": t.lot,
                "detail": t.detail[:200],
                "recorded_at": now,
            }
            for t in a.txns
        ]
        a.loaded = {lot.key: _state(lot) for lot in a.ledger.lots}
        a.txns = []
    upsert_many(session, LoyaltyLot.__table__, lots, ["customer_id", "key"])
    upsert_many(session, LoyaltyAccount.__table__, rows, ["customer_id"])
    upsert_many(session, LoyaltyTransaction.__table__, txns, ["customer_id", "key"], update=False)


def applied(session: Session, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (customer, transaction key) pairs are already in the ledger."""
    wanted = list(set(keys))
    if not wanted:
        return set()
    pair = tuple_(LoyaltyTransaction.customer_id, LoyaltyTransaction.key)
    found = session.execute(
        select(LoyaltyTransaction.customer_id, LoyaltyTransaction.key).where(pair.in_(wanted))
    ).all()
    return {(cid, key) for cid, key in found}


def standings(
    session: Session, programme: Programme | None, customers: dict[str, dt.datetime]
) -> dict[str, dict[str, Any]]:
    """The `loyalty` template variable of each customer (by id, at the instant given)."""
    if programme is None or programme.points is None or not customers:
        return {cid: dict(EMPTY) for cid in customers}
    accounts = load(session, dict.fromkeys(customers))
    return {cid: standing(programme, a.ledger, a.tier, customers[cid]) for cid, a in accounts.items()}
