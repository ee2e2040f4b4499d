"""One evaluation pass at `now`: enroll, exit, wake, advance, release, sweep, then enqueue.

Enrolling includes the next pages of the campaigns launched from the dashboard
(`automation.campaigns.queued`), so their first messages are made in the same tick.

Every write is committed before the ids it produced are handed to `enqueue`,
so a crash between the two leaves `queued` rows that the sweep of a later tick
re-enqueues. On PostgreSQL only one tick runs at a time (an advisory lock);
unique keys make a second one harmless anyway.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from sqlalchemy import ColumnElement, Engine, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from automation.advance import batch, wake
from automation.advance.send import QUEUED, Queued
from automation.campaigns import queued as queued_campaigns
from automation.core.statuses import DeliveryStatus
from automation.definitions.catalog import Catalog
from automation.enroll import entry as enroll
from automation.enroll import marks, removed
from automation.enroll.kinds import kind_of
from automation.loyalty.tick import advance_accounts, birthday_points
from automation.store import statistics
from automation.store.models import Delivery, Enrollment

log = logging.getLogger("automation.processes.tick")

LOCK_KEY = 0x6175746F  # "auto"


Enqueue = Callable[[Sequence[Queued]], None]


@dataclass
class TickReport:
    now: dt.datetime
    locked_out: bool = False
    enrolled: dict[str, int] = field(default_factory=dict)
    exited: int = 0
    #: Enrollments parked at a `wait_for` that a new event made due (`advance.wake`).
    woken: int = 0
    deliveries: int = 0
    #: The journeys whose enrolment or advance failed this tick: journey id -> the kind of error.
    failed: dict[str, str] = field(default_factory=dict)
    #: What the sweep put back in motion or gave up on, then what went to the queue.
    released: int = 0
    swept: int = 0
    unknown: int = 0
    enqueued: int = 0
    #: Loyalty accounts brought to `now` (activations, expiries, tier reviews).
    loyalty: int = 0

    def summary(self) -> str:
        if self.locked_out:
            return "another scheduler holds the tick lock; nothing done"
        enrolled = sum(self.enrolled.values())
        text = (
            f"tick at {self.now.isoformat()}: enrolled {enrolled}, exited {self.exited}, woken {self.woken}, "
            f"new deliveries {self.deliveries}, released {self.released}, swept {self.swept}, "
            f"marked unknown {self.unknown}, enqueued {self.enqueued}"
        )
        if self.failed:
            text += "; failed: " + ", ".join(f"{jid} ({kind})" for jid, kind in sorted(self.failed.items()))
        return text

    def fail(self, journey_id: str, exc: Exception) -> None:
        """Note one journey's failure; logged by kind, never with the data involved."""
        kind = type(getattr(exc, "orig", None) or exc).__name__
        self.failed.setdefault(journey_id, kind)
        log.error("journey %s: this tick's work failed with %s; the other journeys go on", journey_id, kind)


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


def _set(session: Session, now: dt.datetime, where: ColumnElement[bool], **values: object) -> list[Queued]:
    """Set `values` (and `updated_at`) on the deliveries `where` selects; the queued form of each."""
    rows = session.execute(update(Delivery).where(where).values(**values, updated_at=now).returning(*QUEUED))
    return [Queued(*r) for r in rows]


def _release_and_sweep(
    session: Session, now: dt.datetime, grace: dt.timedelta, lease: dt.timedelta, report: TickReport
) -> list[Queued]:
    """Deferred rows now due, queued rows whose message went missing, stale claims."""
    requeue = {"status": DeliveryStatus.QUEUED, "message_id": None, "enqueued_at": now}
    released = _set(
        session, now, (Delivery.status == DeliveryStatus.DEFERRED) & (Delivery.due_at <= now), **requeue
    )
    stale = Delivery.claimed_at < now - lease
    swept = _set(
        session,
        now,
        (Delivery.status == DeliveryStatus.QUEUED) & (Delivery.enqueued_at < now - grace),
        enqueued_at=now,
    )
    reclaimed = _set(
        session, now, (Delivery.status == DeliveryStatus.CLAIMED) & stale, **requeue, claimed_at=None
    )
    unknown = _set(
        session,
        now,
        (Delivery.status == DeliveryStatus.SENDING) & stale,
        status=DeliveryStatus.UNKNOWN,
        reason="the worker stopped after handing the message to the provider; not re-sent",
    )
    report.released = len(released)
    report.swept = len(swept) + len(reclaimed)
    report.unknown = len(unknown)
    return [*released, *swept, *reclaimed]


def tick(
    engine: Engine,
    session_factory: sessionmaker[Session],
    catalog: Catalog,
    now: dt.datetime,
    enqueue: Enqueue,
    *,
    default_tz: str = "UTC",
    global_holdout_pct: float = 0.0,
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
            report.exited += removed.end_removed(session, catalog.journeys, now)
        report.enrolled.update(queued_campaigns.enroll_pending(session_factory, catalog, now))
        report.loyalty = advance_accounts(session_factory, catalog.programme, now)
        birthday_points(session_factory, catalog.programme, now)
        scope = replace(catalog.scope(default_tz), events_committed=marks.frontier(engine))
        for journey in catalog.active():
            # Each journey in its own transaction: one journey's failure is its own.
            try:
                with session_factory.begin() as session:
                    _without_jit(session)
                    exited = enroll.exits(session, journey, now)
                    if kind_of(journey).enrolls_at_tick:
                        added = enroll.enroll_due(session, journey, now, scope)
                        statistics.keep_up(session, Enrollment.__tablename__, added)
                        report.enrolled[journey.id] = added
                report.exited += exited
            except Exception as exc:
                report.enrolled.pop(journey.id, None)
                report.fail(journey.id, exc)
        with session_factory.begin() as session:
            report.woken = wake.wake(session, catalog, now)
        cursor: batch.Cursor | None = None
        while True:
            with session_factory.begin() as session:
                cursor, ids = batch.advance_page(
                    session,
                    catalog,
                    now,
                    default_tz,
                    cursor,
                    report.fail,
                    global_holdout_pct=global_holdout_pct,
                )
            report.deliveries += len(ids)
            _enqueue(enqueue, ids, report)
            if cursor is None:
                break
        with session_factory.begin() as session:
            ids = _release_and_sweep(session, now, sweep_grace, claim_lease, report)
            batch.settle(session)
        _enqueue(enqueue, ids, report)
    return report


def _enqueue(enqueue: Enqueue, ids: Sequence[Queued], report: TickReport) -> None:
    if ids:
        enqueue(ids)
        report.enqueued += len(ids)
