"""Experiment results: per arm, what the ledger counted, and the statistics of `core.experiment_stats`.

An entrant of an experiment is an enrollment with a first delivery at the
experiment's send step (`core.arms.Design`); its arm is the one recorded on that
delivery, held out or not. It converted when the journey's goal event followed
within the goal window after the step fell due (the same instant for every arm,
so a held-out entrant is measured exactly like a messaged one); its revenue is
the sum of those goal events' `total`. Both are read from the conversion ledger
(`automation.store.conversions`, where that rule is written). Sent, delivered, opened and clicked count
entrants whose message (or its retry) got that far. Customers of the global
control group are no arm of any journey's experiment: they are counted apart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, literal, select
from sqlalchemy.orm import Session, sessionmaker

from automation.core import arms, assignment
from automation.core import experiment_stats as es
from automation.core.journeys import Goal, Journey
from automation.core.statuses import DeliveryStatus
from automation.definitions.catalog import Catalog
from automation.errors import UserError
from automation.insight.reporting import feedback_sql, fold_conversions
from automation.store.filter_sql import json_typed
from automation.store.models import Conversion, Delivery, Enrollment, SplitDecision
from automation.store.models import Event as EventRow
from automation.store.sqlutil import plus


@dataclass
class ArmResult:
    """One arm's figures: who entered and converted (what the statistics read), then its reach."""

    arm: str
    weight: float
    entrants: int = 0
    converted: int = 0
    conversion_rate: float | None = None
    conversion_ci: es.Interval | None = None
    p_best: float | None = None
    lift: es.Comparison | None = None
    revenue: float = 0.0
    #: Distinct entrants whose message was sent, delivered, opened, clicked.
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0

    @property
    def revenue_per_entrant(self) -> float | None:
        return self.revenue / self.entrants if self.entrants else None


@dataclass
class ExperimentResult:
    journey_id: str
    step_id: str
    split: bool
    goal: str | None
    baseline: str
    arms: list[ArmResult]
    srm: es.Srm | None
    verdict: str
    global_control: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for arm, row in zip(self.arms, out["arms"], strict=True):
            row["revenue_per_entrant"] = arm.revenue_per_entrant
        out["srm"] = None if self.srm is None else {**asdict(self.srm), "flagged": self.srm.flagged}
        return out


def _first(journey: Journey, step_id: str) -> Select[int, str, str | None, dt.datetime]:
    """Each entrant's first delivery at the step: enrollment, customer, arm, the instant it fell due."""
    return select(
        Delivery.enrollment_id,
        Delivery.customer_id,
        Delivery.arm,
        func.coalesce(Delivery.first_due_at, Delivery.due_at).label("anchor"),
    ).where(Delivery.journey_id == journey.id, Delivery.step_id == step_id, Delivery.retry_of.is_(None))


def _goal_window(s: Session, goal: Goal, customer_id: Any, anchor: Any) -> ColumnElement[bool]:
    """The customer's goal events within the goal window after `anchor`."""
    return and_(
        EventRow.customer_id == customer_id,
        EventRow.name == goal.event,
        EventRow.occurred_at > anchor,
        EventRow.occurred_at <= plus(s, anchor, goal.within),
    )


def _counts(s: Session, journey: Journey, design: arms.Design) -> tuple[dict[str, ArmResult], int]:
    rows = {arm: ArmResult(arm, weight) for arm, weight in design.arms}
    first = _first(journey, design.step_id).subquery()
    control = 0
    for arm, n in s.execute(select(first.c.arm, func.count()).group_by(first.c.arm)):
        if arm in rows:
            rows[arm].entrants = n
        elif arm == assignment.GLOBAL_CONTROL:
            control = n
    reached = feedback_sql()["delivered"]
    sent = Delivery.status == DeliveryStatus.SENT
    entrant = Delivery.enrollment_id
    for arm, n_sent, n_delivered, n_opened, n_clicked in s.execute(
        select(
            Delivery.arm,
            func.count(func.distinct(case((sent, entrant)))),
            func.count(func.distinct(case((and_(sent, reached), entrant)))),
            func.count(func.distinct(case((Delivery.opened_at.is_not(None), entrant)))),
            func.count(func.distinct(case((Delivery.clicked_at.is_not(None), entrant)))),
        )
        .where(Delivery.journey_id == journey.id, Delivery.step_id == design.step_id)
        .group_by(Delivery.arm)
    ):
        if arm in rows:
            row = rows[arm]
            row.sent, row.delivered, row.opened, row.clicked = n_sent, n_delivered, n_opened, n_clicked
    if journey.goal is not None:
        c = Conversion
        for arm, n, revenue in s.execute(
            select(c.arm, func.count(), func.sum(c.revenue))
            .where(c.journey_id == journey.id, c.step_id == design.step_id, c.anchored)
            .group_by(c.arm)
        ):
            if arm in rows:
                rows[arm].converted, rows[arm].revenue = n, float(revenue or 0)
    return rows, control


def _split_counts(
    s: Session, journey: Journey, design: arms.Design, global_holdout_pct: float
) -> tuple[dict[str, ArmResult], int, int]:
    """Each path's figures, and the entrants in no path: of the global control group, of the holdout."""
    rows = {arm: ArmResult(arm, weight) for arm, weight in design.arms}
    d = SplitDecision
    on_path = and_(
        Delivery.enrollment_id == d.enrollment_id,
        Delivery.journey_id == journey.id,
        Delivery.step_id.in_(list(arms.path_steps(journey, design.step_id))),
    )
    sent = Delivery.status == DeliveryStatus.SENT
    reached = [
        exists().where(on_path, got)
        for got in (
            sent,
            and_(sent, feedback_sql()["delivered"]),
            Delivery.opened_at.is_not(None),
            Delivery.clicked_at.is_not(None),
        )
    ]
    goal = [literal(False), literal(0.0)]
    if journey.goal is not None:
        window = _goal_window(s, journey.goal, Enrollment.customer_id, d.decided_at)
        total = json_typed("total", "number", EventRow.properties)
        goal = [
            exists().where(window),
            select(func.coalesce(func.sum(total), 0)).where(window).scalar_subquery(),
        ]
    columns: list[Any] = [d.path_id, Enrollment.customer_id, *reached, *goal]
    query = (
        select(*columns)
        .join(Enrollment, Enrollment.id == d.enrollment_id)
        .where(d.journey_id == journey.id, d.step_id == design.step_id)
    )
    apart: dict[str, int] = {assignment.GLOBAL_CONTROL: 0, assignment.HOLDOUT: 0}
    for found in s.execute(query):
        path, customer_id, got, (converted, revenue) = found[0], found[1], found[2:6], found[6:]
        held = arms.withheld(journey, customer_id, global_holdout_pct)
        if held is not None:
            apart[held.arm] += 1
            continue
        row = rows.get(path)
        if row is None:  # a path the journey no longer has
            continue
        row.entrants += 1
        row.sent += bool(got[0])
        row.delivered += bool(got[1])
        row.opened += bool(got[2])
        row.clicked += bool(got[3])
        row.converted += bool(converted)
        row.revenue += float(revenue)
    return rows, apart[assignment.GLOBAL_CONTROL], apart[assignment.HOLDOUT]


def result(
    s: Session, journey: Journey, design: arms.Design, global_holdout_pct: float = 0.0
) -> ExperimentResult:
    """The figures of one experiment of `journey`."""
    held = 0
    if design.split:
        rows, control, held = _split_counts(s, journey, design, global_holdout_pct)
    else:
        rows, control = _counts(s, journey, design)
    ordered = [rows[arm] for arm, _ in design.arms]
    analysis = es.analyse([es.Counts(r.arm, r.entrants, r.converted, r.weight) for r in ordered])
    lifts = {c.arm: c for c in analysis.comparisons}
    for r in ordered:
        r.conversion_rate = analysis.rates[r.arm]
        r.conversion_ci = analysis.intervals[r.arm]
        r.p_best = analysis.p_best.get(r.arm)
        r.lift = lifts.get(r.arm)
    notes = [] if journey.goal else ["the journey has no goal: nothing converts"]
    if held:
        notes.append(f"{held} entrants of the journey's holdout are in no path (no path reached them)")
    return ExperimentResult(
        journey.id,
        design.step_id,
        design.split,
        journey.goal.event if journey.goal else None,
        analysis.baseline,
        ordered,
        analysis.srm,
        analysis.verdict,
        control,
        notes,
    )


def results(
    sessions: sessionmaker[Session], catalog: Catalog, journey: Journey, global_holdout_pct: float = 0.0
) -> list[ExperimentResult]:
    """Every experiment of `journey` (of `catalog`) with its figures (none when it has no experiment)."""
    fold_conversions(sessions, catalog)
    with sessions() as s:
        return [result(s, journey, d, global_holdout_pct) for d in arms.designs(journey)]


def show(
    sessions: sessionmaker[Session], catalog: Catalog, journey_id: str, global_holdout_pct: float = 0.0
) -> list[ExperimentResult]:
    """Every experiment of one journey, with its figures; a user error when it has none."""
    journey = catalog.get(journey_id)
    if journey is None:
        raise UserError(f"no journey {journey_id!r} in the journeys folder")
    if not arms.designs(journey):
        raise UserError(
            f"journey {journey_id!r} has no experiment: no `holdout`, no send with `variants`, no `split`"
        )
    return results(sessions, catalog, journey, global_holdout_pct)


def listing(catalog: Catalog) -> list[tuple[Journey, arms.Design]]:
    """Every journey's experiments, by journey id."""
    return [(j, d) for _, j in sorted(catalog.journeys.items()) for d in arms.designs(j)]
