"""Answers for the marketer: what each journey did, the ledger, and where one customer stands.

Every figure is one grouped query over the ledger. A delivery belongs to a time
range by its `due_at`, the instant it was (or will be) judged and sent. A
conversion is an enrollment with a sent delivery followed, within the
journey's goal window, by the goal event (counted over the conversion ledger,
`automation.store.conversions`, where that rule is written); exits by the goal
event are counted beside it. What the provider said about a message is one word
(`automation.core.outcomes`); `said_sql` is the same rule in SQL. Delivered,
bounced, complained and unsubscribed rates are shares of the messages sent.
Enrollments are counted from their tally, and over the whole ledger the enrollments
that were sent a message or converted from the funnel's (`automation.store.tallies`);
over a range of due instants those two are counted from the ledger itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, select, true
from sqlalchemy.orm import Session, sessionmaker

from automation.core import outcomes
from automation.core.records import WELL_KNOWN
from automation.core.statuses import REPORTED, UNSETTLED, DeliveryStatus, EnrollmentState
from automation.definitions.catalog import Catalog
from automation.errors import UserError
from automation.insight import funnel
from automation.insight.position import position
from automation.store import conversions as ledger
from automation.store import engagement, tallies
from automation.store import topics as topic_choices
from automation.store.models import Conversion, Coupon, Customer, CustomerEventStat, Delivery, Enrollment

FEEDBACK = engagement.FEEDBACK


def said_sql() -> Any:
    """`outcomes.provider_said` as a SQL expression over the deliveries table."""
    whens = []
    for said in outcomes.SAID:
        if said.flag is not None:
            whens.append((getattr(Delivery, said.flag).is_not(None), said.word))
        else:
            whens.append((Delivery.provider_status.in_(sorted(said.statuses)), said.word))
    return case(*whens, else_=Delivery.provider_status)


def feedback_sql() -> dict[str, ColumnElement[bool]]:
    """When a sent message counts as delivered, bounced, complained or unsubscribed."""
    return engagement.feedback(Delivery)


def delivery_counts(by: Any, where: ColumnElement[bool]) -> Select[Any]:
    """Per (`by`, status): deliveries, opened, clicked, then one count per outcome of `FEEDBACK`."""
    said = feedback_sql()
    return (
        select(
            by,
            Delivery.status,
            func.count(),
            func.count(Delivery.opened_at),
            func.count(Delivery.clicked_at),
            *(func.count(case((said[name], 1))) for name in FEEDBACK),
        )
        .where(where)
        .group_by(by, Delivery.status)
    )


@dataclass
class JourneyStats:
    journey_id: str
    name: str
    active: int = 0
    deliveries: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REPORTED, 0))
    opened: int = 0
    clicked: int = 0
    sent_enrollments: int = 0
    conversions: int = 0
    goal_exits: int = 0
    #: Coupon codes its sent messages carried that an order has since named (`properties.coupon`).
    coupons_redeemed: int = 0
    goal: str | None = None
    #: `enabled: false`: its active enrollments wait where they are (no new entries, no steps).
    paused: bool = False
    #: What the provider said about the messages sent (`FEEDBACK`), counted once per message.
    feedback: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FEEDBACK, 0))
    #: Enrollments that entered in the range.
    entered: int = 0
    #: Per step, in file order (`automation.insight.funnel`); empty for a journey no longer in the folder.
    steps: list[funnel.StepStats] = field(default_factory=list)

    @property
    def conversion_rate(self) -> float | None:
        if self.goal is None or not self.sent_enrollments:
            return None
        return self.conversions / self.sent_enrollments

    def rate(self, name: str) -> float | None:
        """The share of sent messages with this feedback; None before anything was sent."""
        sent = self.deliveries.get(DeliveryStatus.SENT, 0)
        return self.feedback[name] / sent if sent else None

    def as_dict(self) -> dict[str, Any]:
        rates = {f"{name}_rate": self.rate(name) for name in FEEDBACK}
        steps = [{**asdict(step), "sent": step.sent} for step in self.steps]
        return {**asdict(self), "conversion_rate": self.conversion_rate, **rates, "steps": steps}


def _in_range(col: Any, since: dt.datetime | None, until: dt.datetime | None) -> ColumnElement[bool]:
    parts = [true()]
    if since is not None:
        parts.append(col >= since)
    if until is not None:
        parts.append(col < until)
    return and_(*parts)


def _stats(s: Session, catalog: Catalog, journey_id: str | None) -> dict[str, JourneyStats]:
    out = {
        jid: JourneyStats(jid, j.name, goal=j.goal.event if j.goal else None, paused=not j.enabled)
        for jid, j in sorted(catalog.journeys.items())
        if journey_id in (None, jid)
    }
    for (jid,) in tallies.counted(s, tallies.DELIVERIES, ("journey_id",)):
        if journey_id in (None, jid):
            out.setdefault(jid, JourneyStats(jid, "(no longer in the journeys folder)"))
    return out


def fold_ledgers(sessions: sessionmaker[Session], catalog: Catalog) -> None:
    """Bring the conversion ledger up to date with the catalog's goals, then the reach with both
    ledgers' changes: what every reader of them does first."""
    goals = {jid: j.goal for jid, j in catalog.journeys.items() if j.goal is not None}
    with sessions.begin() as s:
        ledger.fold(s, goals)
        tallies.fold_reach(s)


def reached(s: Session, journey_id: str | None = None) -> dict[str, dict[str, int]]:
    """Per journey (or the one named), the enrollments at each of `tallies.STAGES` over the whole ledger,
    as of the last `fold_ledgers`."""
    match = None if journey_id is None else {"journey_id": journey_id}
    return {jid: c for (jid,), c in tallies.counted(s, tallies.FUNNEL, ("journey_id",), match=match).items()}


def enrolled(
    s: Session,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    **match: str,
) -> dict[str, int]:
    """Per journey, the enrollments that entered in the range and whose keys `match` (journey_id, state)."""
    binned = tallies.span(Enrollment.entered_at, since, until)
    counts = tallies.counted(s, tallies.ENROLLED, ("journey_id",), *binned, match=match)
    return {jid: c["n"] for (jid,), c in counts.items()}


def _conversions(s: Session, journey_id: str, since: dt.datetime | None, until: dt.datetime | None) -> int:
    """Enrollments with a sent delivery due in the range followed by the goal within its window."""
    if since is None and until is None:
        return reached(s, journey_id).get(journey_id, {}).get("converted", 0)
    return int(
        s.scalar(
            select(func.count(func.distinct(Conversion.enrollment_id))).where(
                Conversion.journey_id == journey_id,
                Conversion.converted,
                _in_range(Conversion.due_at, since, until),
            )
        )
        or 0
    )


def conversions(
    sessions: sessionmaker[Session],
    catalog: Catalog,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    journey_id: str | None = None,
) -> int:
    """The conversions `status` counts over every journey of the catalog (or the one named), nothing else."""
    fold_ledgers(sessions, catalog)
    with sessions() as s:
        goals = [
            jid
            for jid, j in sorted(catalog.journeys.items())
            if j.goal is not None and journey_id in (None, jid)
        ]
        return sum(_conversions(s, jid, since, until) for jid in goals)


def _sent_enrollments(
    s: Session, due: ColumnElement[bool], since: dt.datetime | None, until: dt.datetime | None
) -> dict[str, int]:
    """Per journey, the enrollments with a sent delivery that `due` selects (the whole ledger: its tally)."""
    if since is None and until is None:
        return {jid: c["sent"] for jid, c in reached(s).items()}
    return {
        jid: count
        for jid, count in s.execute(
            select(Delivery.journey_id, func.count(func.distinct(Delivery.enrollment_id)))
            .where(due, Delivery.status == DeliveryStatus.SENT)
            .group_by(Delivery.journey_id)
        )
    }


def status(
    sessions: sessionmaker[Session],
    catalog: Catalog,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    journey_id: str | None = None,
) -> list[JourneyStats]:
    """Per journey (or the one named): active enrollments now; deliveries, feedback and conversions."""
    fold_ledgers(sessions, catalog)
    with sessions() as s:
        stats = _stats(s, catalog, journey_id)
        for jid, count in enrolled(s, state=EnrollmentState.ACTIVE.value).items():
            if jid in stats:
                stats[jid].active = count
        due = _in_range(Delivery.due_at, since, until)
        if journey_id is not None:
            due = and_(due, Delivery.journey_id == journey_id)
        binned = tallies.span(Delivery.due_at, since, until)
        only = None if journey_id is None else {"journey_id": journey_id}
        by_status = tallies.counted(s, tallies.DELIVERIES, ("journey_id", "status"), *binned, match=only)
        for (jid, status), counts in by_status.items():
            row = stats[jid]
            st = DeliveryStatus(status)
            key = st.reported
            row.deliveries[key] = row.deliveries.get(key, 0) + counts["n"]
            row.opened += counts["opened"]
            row.clicked += counts["clicked"]
            if st == DeliveryStatus.SENT:
                row.feedback = {name: counts[name] for name in FEEDBACK}
        for jid, count in _sent_enrollments(s, due, since, until).items():
            if jid in stats:
                stats[jid].sent_enrollments = count
        for jid, count in s.execute(
            select(Delivery.journey_id, func.count())
            .join(Coupon, Coupon.delivery_id == Delivery.id)
            .where(due, Coupon.redeemed_at.is_not(None))
            .group_by(Delivery.journey_id)
        ):
            stats[jid].coupons_redeemed = count
        for jid, count in enrolled(s, since, until).items():
            if jid in stats:
                stats[jid].entered = count
        for jid, row in stats.items():
            journey = catalog.get(jid)
            if journey is not None:
                row.steps = funnel.steps(s, journey, binned)
            if journey is None or journey.goal is None:
                continue
            row.conversions = _conversions(s, journey.id, since, until)
            row.goal_exits = int(
                s.scalar(
                    select(func.count()).where(
                        Enrollment.journey_id == jid,
                        Enrollment.converted_at.is_not(None),
                        _in_range(Enrollment.converted_at, since, until),
                    )
                )
                or 0
            )
    return list(stats.values())


# ---------------------------------------------------------------- one customer


@dataclass
class CustomerReport:
    customer_id: str
    traits: dict[str, Any]
    facts: dict[str, Any]
    events: list[dict[str, Any]]
    in_flight: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    topics: dict[str, dict[str, Any]]


def customer(
    sessions: sessionmaker[Session], customer_id: str, messages: int = 10, catalog: Catalog | None = None
) -> CustomerReport:
    """Traits, order facts, journeys in flight (next step and time), the last messages, topic choices.

    With the `catalog`, each journey in flight also says where the customer is
    (`automation.insight.position`).
    """
    with sessions() as s:
        c = s.get(Customer, customer_id)
        if c is None:
            raise UserError(f"no customer {customer_id!r}")
        traits: dict[str, Any] = {name: getattr(c, name) for name in WELL_KNOWN}
        traits.update(sorted((c.traits or {}).items()))
        facts = {
            "order_count": c.order_count or 0,
            "lifetime_value": c.lifetime_value or Decimal(0),
            "last_order_at": c.last_order_at,
            "created_at": c.created_at,
        }
        events = [
            {"event": name, "count": count, "first_at": first, "last_at": last}
            for name, count, first, last in s.execute(
                select(
                    CustomerEventStat.name,
                    CustomerEventStat.count,
                    CustomerEventStat.first_at,
                    CustomerEventStat.last_at,
                )
                .where(CustomerEventStat.customer_id == customer_id)
                .order_by(CustomerEventStat.name)
            )
        ]
        in_flight = _in_flight(s, customer_id, catalog)
        recent = _ledger(s, [Delivery.customer_id == customer_id], messages)
        choices = {
            topic: {
                "subscribed": c.subscribed,
                "chosen_at": c.chosen_at,
                "how": c.how,
                "confirmed_at": c.confirmed_at,
            }
            for topic, c in sorted(topic_choices.of(s, [customer_id]).get(customer_id, {}).items())
        }
    return CustomerReport(customer_id, traits, facts, events, in_flight, recent, choices)


def _in_flight(s: Session, customer_id: str, catalog: Catalog | None) -> list[dict[str, Any]]:
    """The customer's active enrollments, soonest next step first, each with its unsettled messages."""
    enrollments = list(
        s.scalars(
            select(Enrollment)
            .where(Enrollment.customer_id == customer_id, Enrollment.state == EnrollmentState.ACTIVE)
            .order_by(Enrollment.next_at)
        )
    )
    pending: dict[int, list[str]] = {e.id: [] for e in enrollments}
    for eid, step_id, st, due_at in s.execute(
        select(Delivery.enrollment_id, Delivery.step_id, Delivery.status, Delivery.due_at)
        .where(Delivery.enrollment_id.in_(list(pending)), Delivery.status.in_(UNSETTLED))
        .order_by(Delivery.due_at, Delivery.id)
    ):
        pending[eid].append(f"{step_id} ({shown_status(st)}, due {due_at.astimezone(dt.UTC):%Y-%m-%d %H:%M})")
    out = []
    for e in enrollments:
        journey = catalog.get(e.journey_id) if catalog is not None else None
        step, waits_for = position(journey, e.next_step_id, e.context)
        out.append(
            {
                "journey": e.journey_id,
                "entered_at": e.entered_at,
                "step": step,
                "waits_for": waits_for,
                "until": e.next_at,
                "pending": "; ".join(pending[e.id]) or None,
                "next_step": e.next_step_id,
                "next_at": e.next_at,
                "campaign": e.campaign_id,
            }
        )
    return out


# ---------------------------------------------------------------- the ledger


def shown_status(status: str) -> str:
    """The status a report shows: a worker's internal `claimed` reads as `sending`."""
    return DeliveryStatus(status).reported


def _ledger(s: Session, where: list[ColumnElement[bool]], limit: int) -> list[dict[str, Any]]:
    said = said_sql().label("provider_said")
    rows = s.execute(
        select(Delivery, said).where(*where).order_by(Delivery.due_at.desc(), Delivery.id.desc()).limit(limit)
    )
    return [
        {
            "id": d.id,
            "due_at": d.due_at,
            "journey": d.journey_id,
            "step": d.step_id,
            "customer": d.customer_id,
            "channel": d.channel,
            "template": d.template,
            "arm": d.arm,
            "status": shown_status(d.status),
            "provider_status": word,
            "reason": d.reason,
            "attempts": d.attempts,
            "sent_at": d.sent_at,
            "campaign": d.campaign_id,
            "retry_of": d.retry_of,
        }
        for d, word in rows
    ]


def deliveries(
    sessions: sessionmaker[Session],
    *,
    customer_id: str | None = None,
    journey_id: str | None = None,
    status: str | None = None,
    provider_status: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The ledger newest due first, filtered by customer, journey, our status and the provider's word."""
    where: list[ColumnElement[bool]] = []
    if customer_id is not None:
        where.append(Delivery.customer_id == customer_id)
    if journey_id is not None:
        where.append(Delivery.journey_id == journey_id)
    if status is not None:
        where.append(Delivery.status.in_([k for k in DeliveryStatus if k.reported == status]))
    if provider_status is not None:
        where.append(said_sql() == provider_status)
    with sessions() as s:
        return _ledger(s, where, limit)
