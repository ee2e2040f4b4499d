"""Step kind `send`: one message on a channel from a template, due when the step is reached.

Planning is pure (`run`). Writing is set-based (`Deliveries`): the planned
sends of a batch of enrollments that share a journey, a step and a due
instant become deliveries in one statement, unique per (enrollment, step), so
a repeated tick makes no second delivery.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import any_, bindparam, literal, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from automation.advance.step import Outcome, PlannedSend, StepKind
from automation.core import arms
from automation.core.journeys import Journey, SendStep
from automation.core.statuses import DeliveryStatus
from automation.store.models import Delivery, Enrollment
from automation.store.sqlutil import insert_for


class SendKind(StepKind[SendStep]):
    name = "send"
    model = SendStep

    def run(self, step_id: str, body: SendStep, at: dt.datetime, now: dt.datetime, tz: ZoneInfo) -> Outcome:
        """The message is due at `now` at the latest: the instant the tick releases it."""
        return Outcome(at, (PlannedSend(step_id, body, max(at, now), at),))

    def waits_for(self, body: SendStep, context: Mapping[str, Any]) -> str:
        return f"to send {body.channel} {' or '.join(body.templates())}"


KIND = SendKind()


class Queued(NamedTuple):
    """A delivery ready for a message: what the enqueuer needs to group sends and pick their queue."""

    id: int
    channel: str
    journey_id: str
    step_id: str
    transactional: bool = False


QUEUED_COLUMNS = ("id", "channel", "journey_id", "step_id", "transactional")
QUEUED = tuple(Delivery.__table__.c[c] for c in QUEUED_COLUMNS)

# journey, step, channel, template, arm, status, reason, transactional, due, fell due
SendKey = tuple[str, str, str, str, str | None, DeliveryStatus, str | None, bool, dt.datetime, dt.datetime]
COLUMNS = (
    "enrollment_id",
    "step_id",
    "journey_id",
    "customer_id",
    "campaign_id",
    "channel",
    "template",
    "arm",
    "transactional",
    "status",
    "reason",
    "due_at",
    "first_due_at",
    "enqueued_at",
    "attempts",
    "created_at",
    "updated_at",
)


class Deliveries:
    """The planned sends of one batch of enrollments, grouped to be written a statement per group.

    Each customer's arm is placed here (`automation.core.arms`); a held-out
    customer's delivery is made `held_out` and never handed to the enqueuer.
    """

    def __init__(self, global_holdout_pct: float = 0.0) -> None:
        self._groups: dict[SendKey, list[int]] = defaultdict(list)
        self.global_holdout_pct = global_holdout_pct

    def add(self, journey: Journey, enrollment_id: int, customer_id: str, send: PlannedSend) -> None:
        step = send.step
        placed = arms.place(journey, send.step_id, step, customer_id, self.global_holdout_pct)
        key = (
            journey.id,
            send.step_id,
            step.channel,
            placed.template,
            placed.arm,
            DeliveryStatus.HELD_OUT if placed.held_out else DeliveryStatus.QUEUED,
            placed.reason,
            journey.transactional,
            send.due_at,
            send.fell_due_at,
        )
        self._groups[key].append(enrollment_id)

    def write(self, session: Session, now: dt.datetime) -> list[Queued]:
        """Insert every group's deliveries (none where one exists); returns those made to be sent."""
        out: list[Queued] = []
        for key, ids in self._groups.items():
            made = _insert(session, key, ids, now)
            if key[5] is DeliveryStatus.QUEUED:
                out.extend(made)
        return out


def _insert(session: Session, send: SendKey, enrollment_ids: list[int], now: dt.datetime) -> list[Queued]:
    """One delivery of `send` per enrollment (none where it exists); returns those made.

    The customer and campaign are read from the enrollment and the rest is the same
    for every row, so the statement carries the enrollment ids and nothing per row:
    on PostgreSQL one array, elsewhere chunks of an IN list.
    """
    jid, step_id, channel, template, arm, status, reason, transactional, due_at, fell_due_at = send
    e = Enrollment
    at = Delivery.due_at.type
    values = (
        literal(step_id),
        e.journey_id,
        e.customer_id,
        e.campaign_id,
        literal(channel),
        literal(template),
        literal(arm, Delivery.arm.type),
        literal(transactional),
        literal(status.value),
        literal(reason, Delivery.reason.type),
        literal(due_at, at),
        literal(fell_due_at, at),
        literal(now, at),
        literal(0),
        literal(now, at),
        literal(now, at),
    )
    if session.get_bind().dialect.name == "postgresql":
        chunks = [e.id == any_(bindparam("ids", enrollment_ids, type_=postgresql.ARRAY(e.id.type)))]
    else:
        chunks = [e.id.in_(enrollment_ids[n : n + 5000]) for n in range(0, len(enrollment_ids), 5000)]
    out: list[Queued] = []
    for ids in chunks:
        stmt = (
            insert_for(session, Delivery.__table__)
            .from_select(COLUMNS, select(e.id, *values).where(ids, e.journey_id == jid))
            .on_conflict_do_nothing(
                index_elements=["enrollment_id", "step_id"], index_where=Delivery.retry_of.is_(None)
            )
            .returning(*QUEUED)
        )
        out.extend(Queued(*r) for r in session.execute(stmt))
    return out
