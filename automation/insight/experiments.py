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

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, select
from sqlalchemy.orm import Session, sessionmaker

from automation.core import arms, assignment
from automation.core import experiment_stats as es
from automation.core.journeys import Goal, Journey
from automation.core.statuses import DeliveryStatus
from automation.definitions.catalog import Catalog
from automation.errors import UserError
from automation.insight.reporting import feedback_sql, fold_ledgers
from automation.store import tallies
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


def _goal_window(s: Session, goal: Goal, customer_id: Any, anchor: Any) -> ColumnElement[bool]:
    """The customer's goal events within the goal window after `anchor`."""
    return and_(
        EventRow.customer_id == customer_id,
        EventRow.name == goal.event,
        EventRow.occurred_at > anchor,
        EventRow.occurred_at <= plus(s, anchor, goal.within),
    )


#: What an experiment counts per arm at its step: entrants, then those sent, delivered, opened, clicked.
REACH = ("entrants", "sent", "delivered", "opened", "clicked")


def _reach(s: Session, journey_id: str, step_id: str) -> dict[str | None, list[int]]:
    """Per arm, `REACH` at the step: summed from the ledger's tallies, where a row is an entrant,
    then corrected over the enrollments with a retry there (one entrant, several rows)."""
    out: dict[str | None, list[int]] = {}
    at_step = {"journey_id": journey_id, "step_id": step_id}
    for (arm, status), c in tallies.counted(s, tallies.DELIVERIES, ("arm", "status"), match=at_step).items():
        sent = status == DeliveryStatus.SENT
        got = (c["n"], c["n"] if sent else 0, c["delivered"] if sent else 0, c["opened"], c["clicked"])
        out[arm] = [a + b for a, b in zip(out.get(arm, [0] * len(REACH)), got, strict=True)]
    here = and_(Delivery.journey_id == journey_id, Delivery.step_id == step_id)
    retried = select(Delivery.enrollment_id).where(here, Delivery.retry_of.is_not(None))
    sent = Delivery.status == DeliveryStatus.SENT
    flags = (
        Delivery.retry_of.is_not(None),
        sent,
        and_(sent, feedback_sql()["delivered"]),
        Delivery.opened_at.is_not(None),
        Delivery.clicked_at.is_not(None),
    )
    chains: dict[tuple[int, str | None], list[Any]] = {}
    for eid, arm, *flagged in s.execute(
        select(Delivery.enrollment_id, Delivery.arm, *(case((f, 1), else_=0) for f in flags)).where(
            here, Delivery.enrollment_id.in_(retried)
        )
    ):
        chains.setdefault((eid, arm), []).append(flagged)
    for (_, arm), chain in chains.items():
        fix = out.setdefault(arm, [0] * len(REACH))
        fix[0] -= sum(row[0] for row in chain)  # a retry is no new entrant
        for i in range(1, len(REACH)):  # one entrant, however many of its rows got there
            fix[i] += max(row[i] for row in chain) - sum(row[i] for row in chain)
    return out


def _counts(s: Session, journey: Journey, design: arms.Design) -> tuple[dict[str, ArmResult], int]:
    rows = {arm: ArmResult(arm, weight) for arm, weight in design.arms}
    control = 0
    reach = _reach(s, journey.id, design.step_id)
    for arm, (entrants, n_sent, n_delivered, n_opened, n_clicked) in reach.items():
        if arm in rows:
            row = rows[arm]
            row.entrants, row.sent, row.delivered = entrants, n_sent, n_delivered
            row.opened, row.clicked = n_opened, n_clicked
        elif arm == assignment.GLOBAL_CONTROL:
            control = entrants
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
    fold_ledgers(sessions, catalog)
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
