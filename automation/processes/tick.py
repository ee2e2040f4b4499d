"""One evaluation pass at `now`: enroll, exit, advance, release, sweep, then enqueue.

Every write is committed before the ids it produced are handed to `enqueue`,
so a crash between the two leaves `queued` rows that the sweep of a later tick
re-enqueues. On PostgreSQL only one tick runs at a time (an advisory lock);
unique keys make a second one harmless anyway.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Engine, Select, any_, bindparam, func, literal, select, text, tuple_, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, sessionmaker

from automation.core import planner
from automation.core.statuses import PENDING, DeliveryStatus, EnrollmentState
from automation.definitions.catalog import Catalog
from automation.enroll import entry as enroll
from automation.store.models import Customer, Delivery, Enrollment
from automation.store.sqlutil import insert_for, update_many

LOCK_KEY = 0x6175746F  # "auto"
ADVANCE_BATCH = 20000


class Queued(NamedTuple):
    """A delivery ready for a message: what the enqueuer needs to group sends into batches."""

    id: int
    channel: str
    journey_id: str
    step_id: str


Enqueue = Callable[[Sequence[Queued]], None]
QUEUED_COLUMNS = ("id", "channel", "journey_id", "step_id")


@dataclass
class TickReport:
    now: dt.datetime
    locked_out: bool = False
    enrolled: dict[str, int] = field(default_factory=dict)
    exited: int = 0
    deliveries: int = 0
    released: int = 0
    swept: int = 0
    unknown: int = 0
    enqueued: int = 0

    def summary(self) -> str:
        if self.locked_out:
            return "another scheduler holds the tick lock; nothing done"
        enrolled = sum(self.enrolled.values())
        return (
            f"tick at {self.now.isoformat()}: enrolled {enrolled}, exited {self.exited}, "
            f"new deliveries {self.deliveries}, released {self.released}, swept {self.swept}, "
            f"marked unknown {self.unknown}, enqueued {self.enqueued}"
        )


def _without_jit(session: Session) -> None:
    """Turn PostgreSQL's JIT off for this transaction: compiling costs more than it saves here.

    The enrollment statements read an index range each, but at a million customers the
    estimate for the event window passes `jit_above_cost`, and compiling it took 0.3 s
    of a one-second idle tick.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


@contextmanager
def tick_lock(engine: Engine) -> Iterator[bool]:
    """Hold the PostgreSQL advisory lock for the tick; always granted on SQLite."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as conn:
        got = bool(conn.execute(select(func.pg_try_advisory_lock(LOCK_KEY))).scalar())
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(select(func.pg_advisory_unlock(LOCK_KEY)))
                conn.commit()


PlanKey = tuple[str, str, dt.datetime, str | None]
# journey, step, channel, template, transactional, due, fell due
SendKey = tuple[str, str, str, str, bool, dt.datetime, dt.datetime]
Cursor = tuple[dt.datetime, int]


def _due(now: dt.datetime, after: Cursor | None) -> Select[Any]:
    """The next ADVANCE_BATCH active enrollments due at `now`, in (next_at, id) order after `after`.

    Read by the partial (next_at, id) index only, whatever the statistics say: the
    cursor starts each page where the last ended (a campaign makes a million rows due
    at one instant), and the zone is a primary-key lookup per row, never a join that a
    stale estimate could turn into a scan of every customer.
    """
    zone = select(Customer.timezone).where(Customer.id == Enrollment.customer_id).scalar_subquery()
    stmt = select(
        Enrollment.id, Enrollment.journey_id, Enrollment.next_step_id, Enrollment.next_at, zone
    ).where(Enrollment.state == EnrollmentState.ACTIVE, Enrollment.next_at <= now)
    if after is not None:
        stmt = stmt.where(tuple_(Enrollment.next_at, Enrollment.id) > tuple_(*after))
    return stmt.order_by(Enrollment.next_at, Enrollment.id).limit(ADVANCE_BATCH)


def _advance_batch(
    session: Session, catalog: Catalog, now: dt.datetime, default_tz: str, after: Cursor | None
) -> tuple[Cursor | None, list[Queued]]:
    """Run the due steps of the next ADVANCE_BATCH enrollments; returns (cursor for the next, deliveries).

    The cursor is None after the last page. Enrollments of a journey no longer in the
    catalog are passed over. The planner decides each enrollment's steps; enrollments
    that share a journey, a step, a due instant and a zone (a campaign, a spike of
    orders) get the same plan, so it is made once for them. The enrollments' new
    positions are written in one statement, the deliveries in one per distinct send.
    """
    rows = session.execute(_due(now, after)).all()
    plans: dict[PlanKey, planner.Advance] = {}
    sends: dict[SendKey, list[int]] = defaultdict(list)
    updates: list[dict[str, Any]] = []
    for eid, jid, step_id, next_at, tz_name in rows:
        journey = catalog.journeys.get(jid)
        if journey is None:
            continue
        assert step_id is not None and next_at is not None  # active rows with next_at <= now
        key = (jid, step_id, next_at, tz_name)
        result = plans.get(key)
        if result is None:
            result = plans[key] = planner.advance(
                journey, step_id, next_at, now, planner.zone(tz_name, default_tz)
            )
        for send in result.sends:
            sends[
                (
                    jid,
                    send.step_id,
                    send.step.channel,
                    send.step.template,
                    journey.transactional,
                    send.due_at,
                    send.fell_due_at,
                )
            ].append(eid)
        updates.append(
            {
                "id": eid,
                "next_step_id": result.next_step_id,
                "next_at": result.next_at,
                "state": EnrollmentState.COMPLETED if result.completed else EnrollmentState.ACTIVE,
            }
        )
    update_many(session, Enrollment.__table__, updates)
    queued = [q for send_key, ids in sends.items() for q in _insert_deliveries(session, send_key, ids, now)]
    cursor = (rows[-1].next_at, rows[-1].id) if len(rows) == ADVANCE_BATCH else None
    return cursor, queued


DELIVERY_COLUMNS = (
    "enrollment_id",
    "step_id",
    "journey_id",
    "customer_id",
    "campaign_id",
    "channel",
    "template",
    "transactional",
    "status",
    "due_at",
    "first_due_at",
    "enqueued_at",
    "attempts",
    "created_at",
    "updated_at",
)


def _insert_deliveries(
    session: Session, send: SendKey, enrollment_ids: list[int], now: dt.datetime
) -> list[Queued]:
    """One delivery of `send` per enrollment (none where it exists); returns those made.

    The customer and campaign are read from the enrollment and the rest is the same
    for every row, so the statement carries the enrollment ids and nothing per row:
    on PostgreSQL one array, elsewhere chunks of an IN list.
    """
    jid, step_id, channel, template, transactional, due_at, fell_due_at = send
    e = Enrollment
    at = Delivery.due_at.type
    values = (
        literal(step_id),
        e.journey_id,
        e.customer_id,
        e.campaign_id,
        literal(channel),
        literal(template),
        literal(transactional),
        literal(DeliveryStatus.QUEUED.value),
        literal(due_at, at),
        literal(fell_due_at, at),
        literal(now, at),
        literal(0),
        literal(now, at),
        literal(now, at),
    )
    pg = session.get_bind().dialect.name == "postgresql"
    if pg:
        chunks = [e.id == any_(bindparam("ids", enrollment_ids, type_=postgresql.ARRAY(e.id.type)))]
    else:
        chunks = [e.id.in_(enrollment_ids[n : n + 5000]) for n in range(0, len(enrollment_ids), 5000)]
    out: list[Queued] = []
    for ids in chunks:
        stmt = (
            insert_for(session, Delivery.__table__)
            .from_select(DELIVERY_COLUMNS, select(e.id, *values).where(ids, e.journey_id == jid))
            .on_conflict_do_nothing(
                index_elements=["enrollment_id", "step_id"], index_where=Delivery.retry_of.is_(None)
            )
            .returning(*_QUEUED)
        )
        out.extend(Queued(*r) for r in session.execute(stmt))
    return out


def _skip_pending(session: Session, enrollment_ids: list[int], reason: str, now: dt.datetime) -> None:
    if enrollment_ids:
        session.execute(
            update(Delivery)
            .where(
                Delivery.enrollment_id.in_(enrollment_ids),
                Delivery.status.in_(PENDING),
            )
            .values(status=DeliveryStatus.SKIPPED, reason=reason, updated_at=now)
        )


_QUEUED = tuple(Delivery.__table__.c[c] for c in QUEUED_COLUMNS)


def _release_and_sweep(
    session: Session, now: dt.datetime, grace: dt.timedelta, lease: dt.timedelta, report: TickReport
) -> list[Queued]:
    """Deferred rows now due, queued rows whose message went missing, stale claims."""
    released = session.execute(
        update(Delivery)
        .where(Delivery.status == DeliveryStatus.DEFERRED, Delivery.due_at <= now)
        .values(status=DeliveryStatus.QUEUED, enqueued_at=now, message_id=None, updated_at=now)
        .returning(*_QUEUED)
    ).all()
    swept = session.execute(
        update(Delivery)
        .where(Delivery.status == DeliveryStatus.QUEUED, Delivery.enqueued_at < now - grace)
        .values(enqueued_at=now, updated_at=now)
        .returning(*_QUEUED)
    ).all()
    reclaimed = session.execute(
        update(Delivery)
        .where(Delivery.status == DeliveryStatus.CLAIMED, Delivery.enqueued_at < now - lease)
        .values(status=DeliveryStatus.QUEUED, message_id=None, enqueued_at=now, updated_at=now)
        .returning(*_QUEUED)
    ).all()
    unknown = session.scalars(
        update(Delivery)
        .where(Delivery.status == DeliveryStatus.SENDING, Delivery.enqueued_at < now - lease)
        .values(
            status=DeliveryStatus.UNKNOWN,
            reason="the worker stopped after handing the message to the provider; not re-sent",
            updated_at=now,
        )
        .returning(Delivery.id)
    ).all()
    report.released = len(released)
    report.swept = len(swept) + len(reclaimed)
    report.unknown = len(unknown)
    return [Queued(*r) for r in (*released, *swept, *reclaimed)]


def tick(
    engine: Engine,
    session_factory: sessionmaker[Session],
    catalog: Catalog,
    now: dt.datetime,
    enqueue: Enqueue,
    *,
    default_tz: str = "UTC",
    sweep_grace: dt.timedelta = dt.timedelta(minutes=10),
    claim_lease: dt.timedelta = dt.timedelta(minutes=15),
) -> TickReport:
    """Evaluate every journey at `now` and enqueue what became due."""
    report = TickReport(now=now)
    with tick_lock(engine) as got:
        if not got:
            report.locked_out = True
            return report
        with session_factory.begin() as session:
            _without_jit(session)
            for journey in catalog.active():
                exited = enroll.exits(session, journey, now)
                _skip_pending(session, exited, "exited the journey", now)
                report.exited += len(exited)
                if journey.trigger.kind == "manual":
                    continue
                report.enrolled[journey.id] = enroll.enroll_due(session, journey, catalog, now, default_tz)
        cursor: Cursor | None = None
        while True:
            with session_factory.begin() as session:
                cursor, ids = _advance_batch(session, catalog, now, default_tz, cursor)
            report.deliveries += len(ids)
            _enqueue(enqueue, ids, report)
            if cursor is None:
                break
        with session_factory.begin() as session:
            ids = _release_and_sweep(session, now, sweep_grace, claim_lease, report)
        _enqueue(enqueue, ids, report)
    return report


def _enqueue(enqueue: Enqueue, ids: Sequence[Queued], report: TickReport) -> None:
    if ids:
        enqueue(ids)
        report.enqueued += len(ids)
