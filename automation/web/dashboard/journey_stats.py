"""Per journey: entrants, sent and conversion rate; per step: messages by status and who waits there;
the funnel entered -> sent -> delivered -> opened -> clicked -> converted.

The list reuses `automation.insight.reporting.status`, the figures of `automation status`; the
funnel is read from the tallies of enrollments and of their reach (`automation.store.tallies`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from automation.core.statuses import DeliveryStatus, EnrollmentState
from automation.definitions.catalog import Catalog
from automation.insight import reporting
from automation.store import tallies
from automation.store.models import Enrollment


@dataclass(frozen=True)
class JourneyRow:
    journey_id: str
    name: str
    trigger: str
    enabled: bool
    entrants: int
    sent: int
    conversion_rate: float | None


@dataclass
class StepCounts:
    messages: dict[str, int] = field(default_factory=dict)
    waiting: int = 0


@dataclass(frozen=True)
class Funnel:
    stages: list[tuple[str, int]]


def journey_rows(sessions: sessionmaker[Session], catalog: Catalog | None) -> list[JourneyRow]:
    if catalog is None:
        return []
    stats = reporting.status(sessions, catalog)
    out = []
    for st in stats:
        journey = catalog.get(st.journey_id)
        out.append(
            JourneyRow(
                st.journey_id,
                st.name,
                journey.trigger.kind if journey else "-",
                journey.enabled if journey else False,
                st.entered,
                st.deliveries.get(DeliveryStatus.SENT, 0),
                st.conversion_rate,
            )
        )
    return out


def step_counts(s: Session, journey_id: str) -> dict[str, StepCounts]:
    out: dict[str, StepCounts] = {}
    by_status = tallies.counted(
        s, tallies.DELIVERIES, ("step_id", "status"), match={"journey_id": journey_id}
    )
    for (step, status), counts in by_status.items():
        out.setdefault(step, StepCounts()).messages[status] = counts["n"]
    for step_id, n in s.execute(
        select(Enrollment.next_step_id, func.count())
        .where(Enrollment.journey_id == journey_id, Enrollment.state == EnrollmentState.ACTIVE)
        .group_by(Enrollment.next_step_id)
    ):
        if step_id is not None:
            out.setdefault(step_id, StepCounts()).waiting = int(n)
    return out


def funnel(sessions: sessionmaker[Session], catalog: Catalog, journey_id: str) -> Funnel:
    """Distinct enrollments reaching each stage; converted as `automation status` counts it."""
    converted = reporting.conversions(sessions, catalog, journey_id=journey_id)
    with sessions() as s:
        entered = reporting.enrolled(s, journey_id=journey_id).get(journey_id, 0)
        reached = reporting.reached(s, journey_id).get(journey_id, {})
    stages = [(stage, reached.get(stage, 0)) for stage in tallies.STAGES if stage != "converted"]
    return Funnel([("entered", entered), *stages, ("converted", converted)])
