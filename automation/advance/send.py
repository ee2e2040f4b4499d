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

from sqlalchemy import literal, select
from sqlalchemy.orm import Session

from automation.advance.step import Outcome, PlannedSend, StepKind
from automation.core import arms
from automation.core.journeys import Journey, SendStep
from automation.core.statuses import DeliveryStatus
from automation.store.models import Delivery, Enrollment
from automation.store.sqlutil import insert_for, unnested


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

# journey, step, channel, template, arm, status, reason, transactional
SendKey = tuple[str, str, str, str, str | None, DeliveryStatus, str | None, bool]
#: One delivery of a group: its enrollment, when it is due and when its step first fell due.
Due = tuple[int, dt.datetime, dt.datetime]
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
        self._groups: dict[SendKey, list[Due]] = defaultdict(list)
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
        )
        self._groups[key].append((enrollment_id, send.due_at, send.fell_due_at))

    def write(self, session: Session, now: dt.datetime) -> list[Queued]:
        """Insert every group's deliveries (none where one exists); returns those made to be sent."""
        out: list[Queued] = []
        for key, rows in self._groups.items():
            made = _insert(session, key, rows, now)
            if key[5] is DeliveryStatus.QUEUED:
                out.extend(made)
        return out


def _insert(session: Session, send: SendKey, rows: list[Due], now: dt.datetime) -> list[Queued]:
    """One delivery of `send` per enrollment (none where it exists); returns those made.

    The customer and campaign are read from the enrollment and the rest is the same
    for every row but the due instants, so the statement carries the enrollment ids
    and those: on PostgreSQL one array each (however many instants: the events of a
    spike each have their own), elsewhere chunks of an IN list per pair of instants.
    """
    jid, step_id, channel, template, arm, status, reason, transactional = send
    e = Enrollment
    at = Delivery.due_at.type

    def values(due_at: Any, fell_due_at: Any) -> tuple[Any, ...]:
        return (
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
            due_at,
            fell_due_at,
            literal(now, at),
            literal(0),
            literal(now, at),
            literal(now, at),
        )

    if session.get_bind().dialect.name == "postgresql":
        dues = [{"enrollment_id": i, "due_at": d, "first_due_at": f} for i, d, f in rows]
        u = unnested(Delivery.__table__, dues, ["enrollment_id", "due_at", "first_due_at"])
        sources = [
            select(e.id, *values(u.c.due_at, u.c.first_due_at))
            .select_from(u.join(e, e.id == u.c.enrollment_id))
            .where(e.journey_id == jid)
        ]
    else:
        by_due: dict[tuple[dt.datetime, dt.datetime], list[int]] = defaultdict(list)
        for i, d, f in rows:
            by_due[(d, f)].append(i)
        sources = [
            select(e.id, *values(literal(d, at), literal(f, at))).where(
                e.id.in_(ids[n : n + 5000]), e.journey_id == jid
            )
            for (d, f), ids in by_due.items()
            for n in range(0, len(ids), 5000)
        ]
    out: list[Queued] = []
    for source in sources:
        stmt = (
            insert_for(session, Delivery.__table__)
            .from_select(COLUMNS, source)
            .on_conflict_do_nothing(
                index_elements=["enrollment_id", "step_id"], index_where=Delivery.retry_of.is_(None)
            )
            .returning(*QUEUED)
        )
        out.extend(Queued(*r) for r in session.execute(stmt))
    return out
