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
from collections import defaultdict

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from automation.core.statuses import EnrollmentState
from automation.core.waiting import matches
from automation.store.models import Enrollment, EnrollmentWait, Event, Watermark

#: The watermark row of this pass.
MARK = "wait_for"


def wake(session: Session, now: dt.datetime) -> int:
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
    woken: dict[str, set[int]] = defaultdict(set)
    for eid, step_id, key, props in rows:
        if matches(key, props or {}):
            woken[step_id].add(eid)
    mark.last_id = newest
    for step_id, ids in woken.items():
        session.execute(
            update(Enrollment)
            .where(
                Enrollment.id.in_(sorted(ids)),
                Enrollment.state == EnrollmentState.ACTIVE,
                Enrollment.next_step_id == step_id,  # still parked there (a wait left by an edit is not)
                Enrollment.next_at > now,
            )
            .values(next_at=now),
            execution_options={"synchronize_session": False},
        )
    return sum(len(ids) for ids in woken.values())
