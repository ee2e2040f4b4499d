"""Rebuilding every account from its causes in one pass, beside what the store holds.

`loyalty recompute` and `simulate` read every event of the programme: a query
per page of customers, and an ORM object per lot, cost more than the replay
itself. Here each table is read once, as a stream ordered by customer (the
events and adjustments, the customers' zones and tiers, the accounts, and the
lots summed per customer by the database), and the streams are merged customer
by customer, so memory holds one customer at a time.

The causes are replayed in the order they happened (time, then row), while
ingest applies events in the order they arrive: a file not sorted by time can
leave a ledger that differs from this replay (a redemption that came before the
order that paid for it), and recompute then reports the difference.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, sessionmaker

from automation.core.earning import BIRTHDAY_EVENT
from automation.core.ledger import Ledger, TxnKind
from automation.core.programme import Programme
from automation.core.records import Track
from automation.core.tiering import TierState
from automation.errors import PointsRefusal
from automation.loyalty.accounts import Account
from automation.loyalty.events import Outcome, apply_one, retier
from automation.store.models import Customer, Event, LoyaltyAccount, LoyaltyLot, LoyaltyTransaction

#: Rows fetched per round trip of each stream.
CHUNK = 5000


@dataclass(frozen=True)
class Stored:
    """What the store holds of one customer's ledger: balances, debt, tier, lots and points earned."""

    points: int = 0
    pending_points: int = 0
    debt: int = 0
    tier: str | None = None
    lots: int = 0
    earned: int = 0


class _Adjustment(NamedTuple):
    customer_id: str
    key: str
    points: int
    at: dt.datetime


def names(programme: Programme) -> list[str]:
    """The events that change the ledger."""
    points = programme.points
    assert points is not None
    return [r.event for r in points.earn if r.event] + [
        points.redeem_event,
        points.refund_event,
        BIRTHDAY_EVENT,
    ]


def _by_customer(session: Session, column: Any) -> Any:
    # Byte order on PostgreSQL, whatever the database's collation: the merge compares ids in Python.
    return column.collate("C") if session.get_bind().dialect.name == "postgresql" else column


def _stream(
    session: Session, query: Select[Any], customer: str | None, column: Any, *then: Any
) -> Iterator[Any]:
    """The rows ordered by `column` (the customer's id), then by `then`, fetched a chunk at a time."""
    if customer is not None:
        query = query.where(column == customer)
    query = query.order_by(_by_customer(session, column), *then)
    yield from session.execute(query, execution_options={"stream_results": True, "yield_per": CHUNK})


def _causes(session: Session, programme: Programme, customer: str | None) -> Iterator[Any]:
    """(customer, at, row id, cause) in each customer's order of time; events and adjustments merged."""
    e, t = Event.__table__.c, LoyaltyTransaction.__table__.c
    events = _stream(
        session,
        select(e.customer_id, e.occurred_at, e.id, e.name, e.event_key, e.properties).where(
            e.name.in_(names(programme))
        ),
        customer,
        e.customer_id,
        e.occurred_at,
        e.id,
    )
    adjustments = _stream(
        session,
        select(t.customer_id, t.at, t.id, t.key, t.points).where(t.kind == TxnKind.ADJUST.value),
        customer,
        t.customer_id,
        t.at,
        t.id,
    )
    tracks = ((cid, at, n, Track(cid, name, key, at, props)) for cid, at, n, name, key, props in events)
    first = next(adjustments, None)
    if first is None:  # the usual case: no manual adjustments, so nothing to merge row by row
        yield from tracks
        return
    adjusts = (
        (cid, at, n, _Adjustment(cid, key, points, at))
        for cid, at, n, key, points in itertools.chain([first], adjustments)
    )
    yield from heapq.merge(tracks, adjusts, key=lambda c: (c[0], c[1], c[2]))


def _accounts(session: Session, customer: str | None) -> Iterator[Any]:
    a = LoyaltyAccount.__table__.c
    return _stream(session, select(a.customer_id, a.debt, a.tier), customer, a.customer_id)


def _lots(session: Session, customer: str | None) -> Iterator[Any]:
    """Per customer: how many lots, their active and pending points left, and the points earned."""
    lot = LoyaltyLot.__table__.c
    query = select(
        lot.customer_id,
        func.count(),
        func.sum(case((lot.active, lot.remaining), else_=0)),
        func.sum(case((lot.active, 0), else_=lot.remaining)),
        func.sum(case((lot.event == "adjustment", 0), else_=lot.points)),
    ).group_by(lot.customer_id)
    return _stream(session, query, customer, lot.customer_id)


def _customers(session: Session, customer: str | None) -> Iterator[Any]:
    c = Customer.__table__.c
    return _stream(session, select(c.id, c.timezone, c.tier), customer, c.id)


class _Cursor:
    """One stream of rows ordered by customer, read a customer at a time."""

    def __init__(self, rows: Iterator[Any]) -> None:
        self.rows = rows
        self.head: Any = next(rows, None)

    def first(self) -> str | None:
        return None if self.head is None else str(self.head[0])

    def take(self, cid: str) -> list[Any]:
        """The rows of `cid`, skipping any of customers before it."""
        out = []
        while self.head is not None and self.head[0] <= cid:
            if self.head[0] == cid:
                out.append(self.head)
            self.head = next(self.rows, None)
        return out


def _rebuilt(
    programme: Programme, cid: str, zone: str | None, causes: list[Any], now: dt.datetime
) -> Account:
    """One customer's account from its causes, brought to `now` as the tick would."""
    points = programme.points
    assert points is not None
    account, out = Account(cid, Ledger(), TierState(), zone), Outcome()
    for _cid, _at, _id, cause in causes:
        if isinstance(cause, _Adjustment):
            until = points.expire.expires_at(cause.at) if points.expire else None
            account.ledger.adjust(cause.key.removeprefix("adjust:"), cause.points, cause.at, until, "")
        else:
            try:
                apply_one(programme, account, cause, out)
            except PointsRefusal:
                continue
    account.ledger.advance(now)
    retier(programme, account, now, out)
    return account


def _stored(customer: Any, account: Any, lots: Any) -> Stored:
    tier = account[2] if account is not None else (customer[2] if customer is not None else None)
    debt = account[1] if account is not None else 0
    if lots is None:
        return Stored(-debt, 0, debt, tier)
    _cid, count, active, pending, earned = lots
    return Stored(int(active) - debt, int(pending), debt, tier, int(count), int(earned))


def replay(
    sessions: sessionmaker[Session], programme: Programme, now: dt.datetime, customer: str | None = None
) -> Iterator[tuple[Account, Stored]]:
    """Each customer with causes or an account: the account rebuilt from its causes, and the stored one."""
    with sessions() as session:
        causes, accounts = (
            _Cursor(_causes(session, programme, customer)),
            _Cursor(_accounts(session, customer)),
        )
        lots, customers = _Cursor(_lots(session, customer)), _Cursor(_customers(session, customer))
        while True:
            heads = [cid for cid in (causes.first(), accounts.first()) if cid is not None]
            if not heads:
                break
            cid = min(heads)
            person, account, summed = customers.take(cid), accounts.take(cid), lots.take(cid)
            zone = person[0][1] if person else None
            rebuilt = _rebuilt(programme, cid, zone, causes.take(cid), now)
            yield (
                rebuilt,
                _stored(next(iter(person), None), next(iter(account), None), next(iter(summed), None)),
            )
        session.rollback()
