"""The tick's advance pass: due enrollments a page at a time, their steps run, their rows written.

Each page is read by the partial (next_at, id) index and written in a fixed
number of statements per journey, whatever its size. An enrollment with no step left
stays active until its last message is settled (`settle`), so an exit still
skips a message that waits for quiet hours or a cap.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Row, Select, exists, select, tuple_, update
from sqlalchemy.orm import Session

from automation.advance import plan, send, wait_for
from automation.advance.kinds import kind_of
from automation.advance.step import CHUNK, Choices, JudgedKind, Judging
from automation.core import planner
from automation.core.journeys import Journey
from automation.core.statuses import UNSETTLED, EnrollmentState
from automation.definitions.catalog import Catalog
from automation.store import statistics
from automation.store.models import Customer, Delivery, Enrollment
from automation.store.sqlutil import update_many

PAGE = 20000
PlanKey = tuple[str, dt.datetime, str | None, str | None]
#: An enrollment on its walk: id, step, the instant it reached it, its zone, the path chosen there.
Walking = tuple[int, str, dt.datetime, str | None, str | None]
Cursor = tuple[dt.datetime, int]


def _due(now: dt.datetime, after: Cursor | None) -> Select[Any]:
    """The next PAGE active enrollments due at `now`, in (next_at, id) order after `after`.

    Read by the partial (next_at, id) index only, whatever the statistics say: the
    cursor starts each page where the last ended (a campaign makes a million rows due
    at one instant), and the zone is a primary-key lookup per row, never a join that a
    stale estimate could turn into a scan of every customer.
    """
    zone = (
        select(Customer.timezone).where(Customer.id == Enrollment.customer_id).scalar_subquery().label("zone")
    )
    stmt = select(
        Enrollment.id,
        Enrollment.journey_id,
        Enrollment.customer_id,
        Enrollment.next_step_id,
        Enrollment.next_at,
        zone,
    ).where(Enrollment.state == EnrollmentState.ACTIVE, Enrollment.next_at <= now)
    if after is not None:
        stmt = stmt.where(tuple_(Enrollment.next_at, Enrollment.id) > tuple_(*after))
    return stmt.order_by(Enrollment.next_at, Enrollment.id).limit(PAGE)


Failed = Callable[[str, Exception], None]


def advance_page(
    session: Session,
    catalog: Catalog,
    now: dt.datetime,
    default_tz: str,
    after: Cursor | None,
    failed: Failed,
    *,
    global_holdout_pct: float = 0.0,
) -> tuple[Cursor | None, list[send.Queued]]:
    """Run the due steps of the next PAGE enrollments; returns (cursor for the next, deliveries made).

    The cursor is None after the last page. Enrollments of a journey no longer in the
    catalog, or disabled (`enabled: false`: paused), are passed over. Each journey's
    share of the page is planned and written under its own savepoint: a journey whose
    steps cannot be planned or written is handed to `failed`, its enrollments stay
    where they were (the next tick tries them again), and the other journeys' work stands.
    Customers of the global control group (`global_holdout_pct` per cent) get `held_out`
    marketing deliveries.
    """
    rows = session.execute(_due(now, after)).all()
    by_journey: dict[str, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        by_journey[row.journey_id].append(row)
    queued: list[send.Queued] = []
    for jid, journey_rows in by_journey.items():
        journey = catalog.journeys.get(jid)
        if journey is None or not journey.enabled:  # removed (ended by the tick) or paused
            continue
        try:
            with session.begin_nested():
                deliveries = send.Deliveries(global_holdout_pct)
                queued += _advance_journey(session, journey, journey_rows, now, default_tz, deliveries)
        except Exception as exc:
            failed(jid, exc)
    statistics.keep_up(session, Delivery.__tablename__, len(queued))
    cursor = (rows[-1].next_at, rows[-1].id) if len(rows) == PAGE else None
    return cursor, queued


def _advance_journey(
    session: Session,
    journey: Journey,
    rows: list[Row[Any]],
    now: dt.datetime,
    default_tz: str,
    deliveries: send.Deliveries,
) -> list[send.Queued]:
    """One journey's due enrollments of a page: planned, moved on, their deliveries made.

    Enrollments that share a step, a due instant and a zone (a campaign, a spike of
    orders) get the same walk, so it is made once for them. A walk that stops at a
    judged step (a branch) is decided for all its enrollments at once, and each
    goes on along the path chosen for it. The new positions are written in one
    statement, the deliveries in one per distinct send.
    """
    plans: dict[PlanKey, plan.Advance] = {}
    updates: list[dict[str, Any]] = []
    walking: list[Walking] = []
    customers = {row.id: row.customer_id for row in rows}
    placed = journey.placed
    # A step removed from the file ends the walk; a wait it held goes with it.
    wait_for.forget(session, [row.id for row in rows if row.next_step_id not in placed])
    for row in rows:
        assert row.next_step_id is not None and row.next_at is not None  # active rows with next_at <= now
        walking.append((row.id, row.next_step_id, row.next_at, row.zone, None))
    while walking:
        judged: dict[str, list[Walking]] = defaultdict(list)
        for eid, step_id, at, zone, chosen in walking:
            key = (step_id, at, zone, chosen)
            result = plans.get(key)
            if result is None:
                tz = planner.zone(zone, default_tz)
                result = plans[key] = plan.advance(journey, step_id, at, now, tz, chosen)
            for planned in result.sends:
                deliveries.add(journey, eid, customers[eid], planned)
            if result.judged:
                assert result.next_step_id is not None and result.next_at is not None
                judged[result.next_step_id].append((eid, result.next_step_id, result.next_at, zone, None))
            else:
                updates.append({"id": eid, "next_step_id": result.next_step_id, "next_at": result.next_at})
        walking = []
        for sid, reached in judged.items():
            for eid, _, at, zone, path in _choose(session, journey, sid, reached, now):
                if path is None:  # parked at the step (a wait_for) until `at`
                    updates.append({"id": eid, "next_step_id": sid, "next_at": at})
                else:
                    walking.append((eid, sid, at, zone, path))
    update_many(session, Enrollment.__table__, updates)
    return deliveries.write(session, now)


def _choose(
    session: Session, journey: Journey, step_id: str, reached: list[Walking], now: dt.datetime
) -> list[Walking]:
    """The enrollments that reached judged step `step_id`, each with the path its kind chose and its start.

    A path of None: the kind chose none yet, and the enrollment waits at the step until the instant given.
    """
    step = journey.placed[step_id].step
    kind = kind_of(step)
    assert isinstance(kind, JudgedKind)
    everyone = [(eid, at) for eid, _, at, _, _ in reached]
    chosen: Choices = {}
    for n in range(0, len(everyone), CHUNK):
        chosen.update(kind.choose(step.body, Judging(session, step_id, everyone[n : n + CHUNK], now)))
    return [(eid, sid, chosen[eid].at, zone, chosen[eid].path) for eid, sid, _, zone, _ in reached]


def settle(session: Session, delivery_ids: Iterable[int] | None = None) -> None:
    """Complete the active enrollments with no step left and no message unsettled.

    With `delivery_ids`, only the enrollments of those deliveries (the worker, after
    recording them); without, every such enrollment (the tick).
    """
    # First deliveries and retries apart: each half is read by an index (the unique
    # (enrollment, step) one holds first deliveries only), where one test scans the table.
    unsettled = [
        exists().where(Delivery.enrollment_id == Enrollment.id, Delivery.status.in_(UNSETTLED), retries)
        for retries in (Delivery.retry_of.is_(None), Delivery.retry_of.is_not(None))
    ]
    stmt = update(Enrollment).where(
        Enrollment.state == EnrollmentState.ACTIVE,
        Enrollment.next_at.is_(None),
        Enrollment.next_step_id.is_(None),
        ~unsettled[0],
        ~unsettled[1],
    )
    if delivery_ids is not None:
        ids = list(delivery_ids)
        if not ids:
            return
        theirs = Enrollment.id.in_(select(Delivery.enrollment_id).where(Delivery.id.in_(ids)))
        if session.get_bind().dialect.name == "postgresql":
            # Two workers recording the last two messages of one enrollment at once would each
            # see the other's as unsettled and leave it active until the tick's sweep. Locked
            # first (in id order), the second one's check runs after the first one's commit.
            session.execute(select(Enrollment.id).where(theirs).order_by(Enrollment.id).with_for_update())
        stmt = stmt.where(theirs)
    session.execute(
        stmt.values(state=EnrollmentState.COMPLETED), execution_options={"synchronize_session": False}
    )
