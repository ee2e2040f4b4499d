"""Per step of a journey: who waits there and what its sends did, so a marketer sees the funnel.

Steps come in the walker's order (`Journey.placed`), nested ones under the
branch or split that holds them with their position as people read it
(`3.then.1`). An active enrollment is counted at the step it will run next
(after a `wait`, the step the wait leads to; at a `wait_for`, the enrollments
parked there until their event or deadline). Message counts are one grouped
query over the ledger, by the delivery's step id, in the same range of due
instants as the rest of `automation status`, summed from the ledger's tallies
(`automation.store.tallies`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from automation.core.journeys import Journey
from automation.core.statuses import DeliveryStatus, EnrollmentState
from automation.store import tallies
from automation.store.models import Enrollment


@dataclass
class StepStats:
    #: Where the step stands: "2", "3.then.1".
    number: str
    id: str
    kind: str
    #: Active enrollments whose next step this is.
    waiting: int = 0
    #: The step's deliveries by reported status (send steps only).
    messages: dict[str, int] = field(default_factory=dict)
    opened: int = 0
    clicked: int = 0

    @property
    def sent(self) -> int:
        return self.messages.get(DeliveryStatus.SENT, 0)


def steps(s: Session, journey: Journey, due: tallies.Span) -> list[StepStats]:
    """The journey's steps in file order with their counts; `due` bounds the deliveries counted."""
    out = {p.id: StepStats(p.number, p.id, p.step.kind) for p in journey.placed.values()}
    waiting = s.execute(
        select(Enrollment.next_step_id, func.count())
        .where(Enrollment.journey_id == journey.id, Enrollment.state == EnrollmentState.ACTIVE)
        .group_by(Enrollment.next_step_id)
    )
    for step_id, count in waiting:
        if step_id in out:
            out[step_id].waiting = count
    sent = tallies.counted(
        s, tallies.DELIVERIES, ("step_id", "status"), *due, match={"journey_id": journey.id}
    )
    for (step_id, status), counts in sent.items():
        row = out.get(step_id)
        if row is None:  # a step since removed from the file
            continue
        key = DeliveryStatus(status).reported
        row.messages[key] = row.messages.get(key, 0) + counts["n"]
        row.opened += counts["opened"]
        row.clicked += counts["clicked"]
    return list(out.values())
