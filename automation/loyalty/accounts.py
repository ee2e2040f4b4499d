"""Loading customers' ledgers and tiers from the store and writing back what changed.

An account is read whole (its lots, debt and tier) and locked on PostgreSQL, so
two writers of one customer take turns. Saving upserts the lots and the account
and appends the transactions; a transaction whose key the customer already has
is skipped, so replaying a cause changes nothing.
"""

from __future__ import annotations

import copy
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
from automation.store.sqlutil import insert_for, insert_ignore

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
    loaded: dict[str, Lot] = field(default_factory=dict)


def _lot(values: dict[str, Any]) -> Lot:
    for name in _MONEY:
        values[name] = float(values[name])
    return Lot(**values)


def lots_of(session: Session, wanted: list[str]) -> dict[str, list[Lot]]:
    """Every lot of these customers (an empty list for one without any), read without a lock.

    Plain rows, not ORM objects: the tick and `recompute` read every lot of a page of accounts.
    """
    table = LoyaltyLot.__table__
    columns = [table.c.customer_id, *(table.c[name] for name in _LOT_FIELDS)]
    lots: dict[str, list[Lot]] = {cid: [] for cid in wanted}
    for row in session.execute(select(*columns).where(table.c.customer_id.in_(wanted))).mappings():
        values = dict(row)
        lots[values.pop("customer_id")].append(_lot(values))
    return lots


def load(session: Session, zones: dict[str, str | None]) -> dict[str, Account]:
    """The accounts of these customers (by id, with their time zone), locked on PostgreSQL.

    A customer without an account gets an empty one holding the tier stored on the customer, if any.
    """
    wanted = sorted(zones)
    if not wanted:
        return {}
    tiers = dict(session.execute(select(Customer.id, Customer.tier).where(Customer.id.in_(wanted))).all())
    query = (
        select(LoyaltyAccount)
        .where(LoyaltyAccount.customer_id.in_(wanted))
        .order_by(LoyaltyAccount.customer_id)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    rows = {a.customer_id: a for a in session.scalars(query)}
    lots = lots_of(session, wanted)
    out = {}
    for cid in wanted:
        row = rows.get(cid)
        ledger = Ledger(lots[cid], row.debt if row else 0, row.clock if row else None)
        tier = TierState(row.tier, row.tier_since, row.tier_review_at) if row else TierState(tiers.get(cid))
        loaded = {lot.key: copy.copy(lot) for lot in lots[cid]}
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
    row: dict[str, Any] = {"customer_id": cid, **{name: getattr(lot, name) for name in _LOT_FIELDS}}
    for name in _MONEY:
        row[name] = Decimal(str(round(row[name], 2)))
    return row


def _upsert(session: Session, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    if not rows:
        return
    stmt = insert_for(session, table)
    updates = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    session.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates), rows)


def save(session: Session, accounts: Iterable[Account], now: dt.datetime) -> None:
    """Write the changed lots, the accounts and their new transactions."""
    lots, rows, txns = [], [], []
    for a in accounts:
        lots += [_lot_row(a.customer_id, lot) for lot in a.ledger.lots if a.loaded.get(lot.key) != lot]
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
        a.loaded = {lot.key: copy.copy(lot) for lot in a.ledger.lots}
        a.txns = []
    _upsert(session, LoyaltyLot.__table__, lots, ["customer_id", "key"])
    _upsert(session, LoyaltyAccount.__table__, rows, ["customer_id"])
    insert_ignore(session, LoyaltyTransaction.__table__, txns, ["customer_id", "key"])


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
