"""Enrollments of a journey whose file was removed: ended on the next tick, their messages skipped.

A journey that is only `enabled: false` stays in the catalog: its enrollments
keep their place (paused) and nothing of theirs is touched here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any, cast

from sqlalchemy import CursorResult, delete, update
from sqlalchemy.orm import Session

from automation.core.statuses import PENDING, DeliveryStatus, EnrollmentState
from automation.store import skipscan
from automation.store.models import Delivery, Enrollment, EnrollmentWait

REASON = "journey removed"


def end_removed(session: Session, journey_ids: Collection[str], now: dt.datetime) -> int:
    """End the active enrollments of journeys not among `journey_ids`; returns how many.

    Their pending messages are skipped with reason `journey removed` and their
    `wait_for` rows deleted; one already
    claimed is skipped by the worker, which finds neither journey nor step.
    """
    known = set(journey_ids)

    def removed(column: Any) -> list[str]:
        # A skip scan of the journey_id index: a tick reads one entry per journey, not every row.
        return [j for j in skipscan.distinct(session, column) if j not in known]

    gone = removed(Enrollment.__table__.c.journey_id)
    ended = 0
    if gone:
        ended = cast(
            CursorResult[Any],
            session.execute(
                update(Enrollment)
                .where(Enrollment.state == EnrollmentState.ACTIVE, Enrollment.journey_id.in_(gone))
                .values(
                    state=EnrollmentState.EXITED,
                    exit_reason=REASON,
                    exited_at=now,
                    next_at=None,
                    next_step_id=None,
                )
            ),
        ).rowcount
    gone = removed(Delivery.__table__.c.journey_id)
    if gone:
        session.execute(
            update(Delivery)
            .where(Delivery.status.in_(PENDING), Delivery.journey_id.in_(gone))
            .values(status=DeliveryStatus.SKIPPED, reason=REASON, updated_at=now)
        )
    gone = removed(EnrollmentWait.__table__.c.journey_id)
    if gone:
        session.execute(delete(EnrollmentWait).where(EnrollmentWait.journey_id.in_(gone)))
    return ended
