"""The early wake: events ingested since the last tick make the `wait_for` steps they answer due now.

Each tick reads only the events past a watermark on their autoincrement id,
joined to `enrollment_waits` by its (customer_id, event) index and filtered by
the match key, so its cost follows the new events, never the enrollments or
the waits. A woken enrollment's `next_at` becomes `now`, and the advance pass
that follows decides it (`advance.wait_for`) from the events table itself.

An early wake can be missed: on PostgreSQL ids are handed out before their
transactions commit, so an event whose id lies below the watermark may become
visible after it moved on. That is only a delay: the wait still falls due at its
deadline, and the decision then reads the events by their timestamps, which is
authoritative.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from automation.core.statuses import EnrollmentState
from automation.core.waiting import matches
from automation.definitions.catalog import Catalog
from automation.store.models import Enrollment, EnrollmentWait, Event, Watermark

#: The watermark row of this pass.
MARK = "wait_for"


def wake(session: Session, catalog: Catalog, now: dt.datetime) -> int:
    """Make due at `now` the parked enrollments a newly ingested event answers; returns how many."""
    newest = session.scalar(select(func.max(Event.id)))
    mark = session.get(Watermark, MARK)
    if mark is None:
        # First tick with this pass: start from here; older waits fall due at their deadlines.
        session.add(Watermark(name=MARK, last_id=newest or 0))
        return 0
    if newest is None or newest <= mark.last_id:
        return 0
    rows = session.execute(
        select(
            EnrollmentWait.enrollment_id,
            EnrollmentWait.step_id,
            EnrollmentWait.match_key,
            Event.properties,
        )
        .join(
            EnrollmentWait,
            (EnrollmentWait.customer_id == Event.customer_id) & (EnrollmentWait.event == Event.name),
        )
        .where(
            Event.id > mark.last_id,
            Event.id <= newest,
            Event.occurred_at >= EnrollmentWait.reached_at,
            Event.occurred_at <= EnrollmentWait.deadline,
        )
    )
    answered = {eid: step_id for eid, step_id, key, props in rows if matches(key, props or {})}
    mark.last_id = newest
    if not answered:
        return 0
    live = _parked(session, catalog, answered)
    stale = sorted(set(answered) - live)
    if stale:
        session.execute(delete(EnrollmentWait).where(EnrollmentWait.enrollment_id.in_(stale)))
    session.execute(
        update(Enrollment)
        .where(Enrollment.id.in_(sorted(live)), Enrollment.next_at > now)
        .values(next_at=now),
        execution_options={"synchronize_session": False},
    )
    return len(live)


def _parked(session: Session, catalog: Catalog, answered: dict[int, str]) -> set[int]:
    """Those enrollments still active and parked at their wait's `wait_for` step.

    A wait left behind by an edit of the journey (the step removed, or now of
    another kind) or by an enrollment that ended is not one: it is deleted, and
    never moves an enrollment's next step forward.
    """
    rows = session.execute(
        select(Enrollment.id, Enrollment.journey_id, Enrollment.next_step_id).where(
            Enrollment.id.in_(sorted(answered)), Enrollment.state == EnrollmentState.ACTIVE
        )
    )
    waiting = {j: {p.id for p in v.placed.values() if p.step.wait_for} for j, v in catalog.journeys.items()}
    return {
        eid for eid, jid, step_id in rows if step_id == answered[eid] and step_id in waiting.get(jid, set())
    }
