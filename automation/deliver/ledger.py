"""The worker's SQL: claim, load, the facts the judge needs, and every row write.

Statements are built once (Core on the table: no ORM bookkeeping per message).
A claim stamps `claimed_at` on the clock of the tick that enqueued the message
(see `claim`), and the tick measures the claim lease from it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import BindParameter, Table, and_, bindparam, case, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, defer, load_only

from automation.core.filters import Filter
from automation.core.statuses import Channel, DeliveryStatus, EnrollmentState
from automation.store import suppressions
from automation.store.filter_sql import compile_filter
from automation.store.models import Customer, Delivery, Enrollment, Suppression

#: Statuses that count towards the frequency caps.
COUNTED = (DeliveryStatus.SENT, DeliveryStatus.SENDING, DeliveryStatus.UNKNOWN)
#: Still to go: rivals for a contested cap slot.
TO_GO = (DeliveryStatus.QUEUED, DeliveryStatus.CLAIMED, DeliveryStatus.DEFERRED)
DIED_SENDING = "the worker stopped after handing the message to the provider; not re-sent"

_TABLE = cast(Table, Delivery.__table__)
_T = _TABLE.c
_IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)
_CLAIM = (
    update(_TABLE)
    .where(_T.id.in_(_IDS), _T.status == DeliveryStatus.QUEUED)
    .values(status=DeliveryStatus.CLAIMED, message_id=bindparam("owner"), claimed_at=bindparam("at"))
    .returning(_T.id)
)
_MINE = select(_T.id, _T.status, _T.message_id).where(_T.id.in_(_IDS)).order_by(_T.id).with_for_update()
_RESUME = update(_TABLE).where(_T.id.in_(_IDS)).values(claimed_at=bindparam("at"))
_ROW = update(_TABLE).where(_T.id == bindparam("b_id"))
_SUPPRESSED = (
    select(Suppression.reason)
    .where(
        Suppression.channel == Delivery.channel,
        suppressions.matches(case((Delivery.channel == Channel.EMAIL, Customer.email), else_=Customer.phone)),
    )
    .limit(1)
    .scalar_subquery()
)
# Ingest keeps addresses in the suppression list's normal form, so the lookup is an equality
# (with the address's hash too: an erased customer's suppressions are kept hashed).
_LOAD = (
    select(Delivery, Enrollment.state, Enrollment.exit_reason, Enrollment.context, Customer, _SUPPRESSED)
    .options(
        load_only(
            Delivery.id,
            Delivery.journey_id,
            Delivery.step_id,
            Delivery.channel,
            Delivery.due_at,
            Delivery.first_due_at,
            Delivery.enqueued_at,
            Delivery.attempts,
            Delivery.customer_id,
            Delivery.template,
            Delivery.retry_of,
        ),
        defer(Customer.trait_times),
    )
    .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
    .join(Customer, Customer.id == Delivery.customer_id)
    .where(Delivery.id.in_(_IDS))
    .order_by(Delivery.customer_id, Delivery.id)
)
_LOAD_LOCKED = _LOAD.with_for_update(of=Customer)


@dataclass(frozen=True)
class Loaded:
    """A claimed row with its enrollment, its person and the suppression of its address."""

    delivery: Delivery
    enrollment_state: EnrollmentState
    enrollment_exit_reason: str | None
    enrollment_context: dict[str, Any]
    customer: Customer
    suppressed: str | None


@dataclass(frozen=True)
class Claim:
    """The rows a message may work on, and its own rows found mid-send (now `unknown`)."""

    ids: list[int]
    died: list[int]


def claim(s: Session, ids: list[int], owner: str, at: dt.datetime) -> Claim:
    """Claim the queued rows for `owner`; resume the rows it claimed before.

    `at` is the claim instant on the tick's clock: the enqueuing tick's `now` plus
    the time the message has spent since (the wall clock in production).
    """
    go = set(s.scalars(_CLAIM, {"ids": ids, "owner": owner, "at": at}))
    rest = [i for i in ids if i not in go]
    resumed: list[int] = []
    died: list[int] = []
    # Locked: a tick may be reclaiming a stale claim of ours right now.
    for did, status, holder in s.execute(_MINE, {"ids": rest}) if rest else ():
        if holder == owner and status == DeliveryStatus.CLAIMED:
            resumed.append(did)
        elif holder == owner and status == DeliveryStatus.SENDING:
            died.append(did)
    if resumed:
        s.execute(_RESUME, {"ids": resumed, "owner": owner, "at": at})
    if died:
        finish(s, died, DeliveryStatus.UNKNOWN, DIED_SENDING)
    return Claim(sorted(go.union(resumed)), died)


def load(s: Session, ids: list[int]) -> list[Loaded]:
    """The claimed rows; on PostgreSQL their people locked in id order, so two journeys queue up."""
    stmt = _LOAD_LOCKED if s.get_bind().dialect.name == "postgresql" else _LOAD
    return [
        Loaded(d, state, exit_reason, context or {}, customer, reason)
        for d, state, exit_reason, context, customer, reason in s.execute(stmt, {"ids": ids})
    ]


def if_holds(s: Session, condition: Filter, delivery_ids: set[int]) -> dict[int, bool | str]:
    """Whether `condition` holds for each delivery's person and enrollment: True, False, or why not told.

    The whole set is asked at once; when the database refuses (one person's data
    the condition cannot read), each delivery is asked alone, so the refusal is
    that person's only. Every question runs in a savepoint, so the transaction
    goes on. Engagement conditions read the delivery's own enrollment.
    """
    try:
        where = compile_filter(condition, Delivery.enrollment_id)
    except Exception as exc:  # a condition that cannot be compiled fails its rows only
        return dict.fromkeys(delivery_ids, f"{type(exc).__name__}: {exc}")
    question = select(Delivery.id).join(Customer, Customer.id == Delivery.customer_id).where(where)
    try:
        with s.begin_nested():
            ok = set(s.scalars(question.where(Delivery.id.in_(delivery_ids))))
        return {did: did in ok for did in delivery_ids}
    except SQLAlchemyError:
        pass
    out: dict[int, bool | str] = {}
    for did in sorted(delivery_ids):
        try:
            with s.begin_nested():
                out[did] = s.scalar(question.where(Delivery.id == did)) is not None
        except SQLAlchemyError as exc:
            out[did] = f"the database refused it ({type(getattr(exc, 'orig', exc)).__name__})"
    return out


def counted(
    s: Session, people: Collection[str], channels: Collection[str], since: dt.datetime
) -> dict[tuple[str, str], list[dt.datetime]]:
    """Due instants of each person's counted messages per channel after `since`."""
    found = s.execute(
        select(Delivery.customer_id, Delivery.channel, Delivery.due_at).where(
            Delivery.customer_id.in_(people),
            Delivery.channel.in_(channels),
            Delivery.transactional.is_(False),
            Delivery.status.in_(COUNTED),
            Delivery.due_at > since,
        )
    )
    out: dict[tuple[str, str], list[dt.datetime]] = {}
    for cid, channel, due_at in found:
        out.setdefault((cid, channel), []).append(due_at)
    return out


def rivals(
    s: Session,
    people: Collection[str],
    channels: Collection[str],
    since: dt.datetime,
    until: dt.datetime,
    besides: list[int],
) -> list[tuple[int, str, str, dt.datetime, dt.datetime | None, str]]:
    """The people's capped messages still to go in (since, until), but `besides`.

    Rows of (id, customer, channel, due, first due, journey).
    """
    return [
        (rid, cid, channel, due_at, first_due_at, jid)
        for rid, cid, channel, due_at, first_due_at, jid in s.execute(
            select(
                Delivery.id,
                Delivery.customer_id,
                Delivery.channel,
                Delivery.due_at,
                Delivery.first_due_at,
                Delivery.journey_id,
            ).where(
                Delivery.customer_id.in_(people),
                Delivery.channel.in_(channels),
                Delivery.transactional.is_(False),
                Delivery.status.in_(TO_GO),
                Delivery.due_at > since,
                Delivery.due_at < until,
                Delivery.id.not_in(besides),
            )
        )
    ]


def update_rows(s: Session, rows: list[dict[str, Any]]) -> None:
    """Write rows that share their columns (and `b_id`, the row's id), one statement per row, sent at once."""
    if rows:
        columns = [k for k in rows[0] if k != "b_id"]
        s.execute(_ROW.values({c: bindparam(c) for c in columns}), rows)


def finish(s: Session, ids: Iterable[int], status: DeliveryStatus, reason: str) -> None:
    """Settle rows that never reach a provider."""
    update_rows(s, [{"b_id": i, "status": status, "reason": reason} for i in ids])


def mark(s: Session, ids: Sequence[int], owner: str, status: DeliveryStatus, **values: Any) -> None:
    """Move this message's rows to `status` in one statement."""
    s.execute(update(_TABLE).where(_T.id.in_(ids), _T.message_id == owner).values(status=status, **values))


def release_claim(s: Session, ids: Sequence[int], owner: str, reason: str) -> None:
    """Nothing reached the provider: back to `claimed`, not counted as an attempt."""
    mark(s, ids, owner, DeliveryStatus.CLAIMED, reason=reason, attempts=Delivery.attempts - 1)


def most_attempts(s: Session, ids: Sequence[int]) -> int:
    return (
        s.scalar(
            select(Delivery.attempts).where(Delivery.id.in_(ids)).order_by(Delivery.attempts.desc()).limit(1)
        )
        or 0
    )


def give_up(s: Session, ids: Sequence[int], owner: str, reason: str) -> list[int]:
    """Fail the rows of a message the worker could not process; returns those it failed.

    Only rows waiting for it are touched: `queued` ones, and those it claimed. A row
    another message holds, one already `sending` or one settled keeps its status.
    """
    waiting = or_(
        _T.status == DeliveryStatus.QUEUED, and_(_T.status == DeliveryStatus.CLAIMED, _T.message_id == owner)
    )
    return list(
        s.scalars(
            update(_TABLE)
            .where(_T.id.in_(ids), waiting)
            .values(status=DeliveryStatus.FAILED, reason=reason[:500])
            .returning(_T.id)
        )
    )


def suppress(s: Session, channel: str, addresses: Iterable[str], reason: str, at: dt.datetime) -> None:
    entries = []
    for address in addresses:
        try:
            key = suppressions.normalize(channel, address)
        except suppressions.AddressError:
            key = address
        entries.append(suppressions.Entry(channel, key, reason))
    suppressions.add(s, entries, "provider", at)
