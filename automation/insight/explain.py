"""One customer and one journey at `now`, nothing sent: `journeys explain` and `journeys preview`.

`explain` walks the same conditions as the tick, in the order the tick applies
them (trigger, look-back, audience, re-entry), with the same rules
(`core.entry`), and names the first that keeps the customer out. `preview`
renders each send step with the context the customer would get: their latest
enrollment's if they have one, else a plausible occurrence from the trigger's
kind (latest matching event, next anniversary, ...).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from automation.config import Settings
from automation.core import arms, assignment, entry
from automation.core.durations import format_duration
from automation.core.filters import Filter, describe
from automation.core.journeys import Journey, SendStep
from automation.core.judging import Verdict
from automation.core.statuses import Channel, DeliveryStatus
from automation.core.suggest import unknown
from automation.core.walk import Placed
from automation.definitions.catalog import Catalog
from automation.definitions.rendering import RenderedEmail, RenderedSms, RenderError
from automation.enroll.kinds import kind_of, template_variables
from automation.errors import UserError
from automation.insight.awaiting import wait_for_lines
from automation.insight.would import Caps, judge_sends, says
from automation.loyalty.accounts import standings
from automation.store.filter_sql import compile_filter
from automation.store.models import Customer, Enrollment, SplitDecision


@dataclass
class Explanation:
    enters: bool
    lines: list[str] = field(default_factory=list)


def load_customer(session: Session, customer_id: str) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise UserError(f"no customer with id {customer_id!r}")
    return customer


def holds(
    session: Session,
    customer_id: str,
    f: Filter | None,
    enrollment: int | None = None,
    as_of: dt.datetime | None = None,
) -> bool:
    """Whether the filter holds for this customer, as the tick judges (engagement: `enrollment`, `as_of`)."""
    condition = compile_filter(f, enrollment, as_of)
    return session.scalar(select(Customer.id).where(Customer.id == customer_id, condition)) is not None


def branch_lines(session: Session, journey: Journey, c: Customer, now: dt.datetime) -> list[str]:
    """Which way each branch would send the customer at `now`, and why (their latest enrollment's sends)."""
    latest = session.scalar(
        select(Enrollment.id)
        .where(Enrollment.journey_id == journey.id, Enrollment.customer_id == c.id)
        .order_by(Enrollment.entered_at.desc(), Enrollment.id.desc())
        .limit(1)
    )
    out = []
    for placed in journey.placed.values():
        if placed.step.branch is None:
            continue
        condition = placed.step.branch.if_
        ok = holds(session, c.id, condition, latest, now)
        way, verdict = ("then", "holds") if ok else ("else", "does not hold")
        out.append(f"branch {placed.id} at {now.isoformat()}: {way} ({describe(condition)} {verdict})")
    return out


def split_lines(session: Session, journey: Journey, c: Customer) -> list[str]:
    """Each split's path for the customer and why (its bucket), and the path their latest entry took."""
    rows = session.execute(
        select(SplitDecision.step_id, SplitDecision.path_id)
        .join(Enrollment, Enrollment.id == SplitDecision.enrollment_id)
        .where(Enrollment.journey_id == journey.id, Enrollment.customer_id == c.id)
        .order_by(SplitDecision.decided_at, SplitDecision.enrollment_id)
    )
    taken = {sid: path for sid, path in rows}
    out = []
    for sid, placed in journey.placed.items():
        if placed.step.split is None:
            continue
        paths = [(p.id, p.weight) for p in placed.step.split.paths]
        a = assignment.pick(journey.id, sid, c.id, paths)
        took = f"; took path {taken[sid]} when last here" if sid in taken else ""
        out.append(f"split {sid}: path {a.arm} ({a.why()}){took}")
    return out


def _ways(session: Session, journey: Journey, c: Customer, now: dt.datetime) -> list[str]:
    """Which way each branch and each `wait_for` would take the customer at `now`, and each split's path."""
    return (
        branch_lines(session, journey, c, now)
        + wait_for_lines(session, journey, c, now)
        + split_lines(session, journey, c)
    )


def failing_part(session: Session, customer_id: str, f: Filter) -> Filter | None:
    """The innermost part of an audience that fails (into `all` nodes), None when it holds."""
    if holds(session, customer_id, f):
        return None
    for sub in f.all or []:
        part = failing_part(session, customer_id, sub)
        if part is not None:
            return part
    return f


def _re_entry(session: Session, journey: Journey, c: Customer, raw_key: str, now: dt.datetime) -> str | None:
    """Why the re-entry policy keeps the customer out of this occurrence, or None."""
    existing = session.execute(
        select(Enrollment.entered_at, Enrollment.state).where(
            Enrollment.journey_id == journey.id,
            Enrollment.customer_id == c.id,
            Enrollment.occurrence_key == entry.occurrence_key(journey, raw_key),
        )
    ).first()
    if existing is not None:
        policy = "re_entry: once" if entry.fixed_key(journey) else "once per occurrence"
        return (
            f"already enrolled ({policy}): entered at {existing.entered_at.isoformat()}, now {existing.state}"
        )
    span = entry.cooldown(journey)
    if span is None:
        return None
    last = session.scalar(
        select(Enrollment.entered_at)
        .where(Enrollment.journey_id == journey.id, Enrollment.customer_id == c.id)
        .order_by(Enrollment.entered_at.desc())
        .limit(1)
    )
    if not entry.in_cooldown(last, now, span):
        return None
    assert last is not None
    return f"cool-down: last entered at {last.isoformat()}; may enter again after {(last + span).isoformat()}"


def explain(
    session: Session,
    journey: Journey,
    catalog: Catalog,
    customer_id: str,
    now: dt.datetime,
    default_tz: str,
    caps: Caps | None = None,
    global_holdout_pct: float = 0.0,
) -> Explanation:
    """Would this customer enter the journey at `now`? If not, the first condition that keeps them out.

    When they would, each send step of an experiment says the customer's arm and why; when
    `caps` are given, each send step is judged as if due at `now`: sent, or the rule that stops it.
    """
    c = load_customer(session, customer_id)
    if not journey.enabled:
        return Explanation(False, ["journey is disabled (enabled: false)"])
    kind = kind_of(journey)
    found = kind.latest(session, journey, c, now, catalog.scope(default_tz))
    occ = found.occurrence
    if occ is None:
        return Explanation(False, [found.why_not])
    lines = [f"trigger met: occurrence {occ.key} at {occ.occurred_at.isoformat()}"]
    lookback = kind.lookback(journey) or dt.timedelta(0)
    if not entry.within_lookback(occ.occurred_at, now, lookback):
        lines.append(
            f"look-back: that occurrence is {format_duration(now - occ.occurred_at)} old, older than "
            f"the look-back {format_duration(lookback)}; it is never sent late"
        )
        return Explanation(False, lines)
    if journey.audience is not None:
        part = failing_part(session, c.id, journey.audience)
        if part is not None:
            lines.append(f"audience: {describe(part)} does not hold")
            return Explanation(False, lines)
        lines.append("audience: holds")
    why_not = _re_entry(session, journey, c, occ.key, now)
    if why_not is not None:
        lines.append(why_not)
        return Explanation(False, lines + _ways(session, journey, c, now))
    lines.append("would enter now")
    for sid, step in journey.send_steps():
        placed = arms.place(journey, sid, step, c.id, global_holdout_pct)
        if placed.arm is not None:
            lines.append(f"step {sid}: {placed.explain()}")
    if caps is not None:
        verdicts = send_verdicts(
            session, journey, catalog, c, now, default_tz=default_tz, caps=caps, context=occ.context
        )
        lines.extend(f"step {sid} if due now: {says(v)}" for sid, v in verdicts.items())
    return Explanation(True, lines + _ways(session, journey, c, now))


# ---------------------------------------------------------------- preview


def preview_context(
    session: Session, journey: Journey, catalog: Catalog, c: Customer, now: dt.datetime, default_tz: str
) -> dict[str, Any]:
    """The enrollment context: the customer's latest enrollment's, else a plausible occurrence."""
    latest = session.scalar(
        select(Enrollment.context)
        .where(Enrollment.journey_id == journey.id, Enrollment.customer_id == c.id)
        .order_by(Enrollment.entered_at.desc(), Enrollment.id.desc())
        .limit(1)
    )
    if latest is not None:
        return dict(latest)
    return kind_of(journey).preview_context(session, journey, c, now, catalog.scope(default_tz))


@dataclass(frozen=True)
class PreviewedStep:
    number: str
    step_id: str
    step: SendStep
    template: str
    message: RenderedEmail | RenderedSms
    notes: list[str]


def send_verdicts(
    session: Session,
    journey: Journey,
    catalog: Catalog,
    c: Customer,
    now: dt.datetime,
    *,
    default_tz: str,
    caps: Caps,
    context: dict[str, Any] | None = None,
) -> dict[str, Verdict]:
    """Each send step's verdict for this customer if it fell due at `now` (the worker's judge)."""
    day = kind_of(journey).occasion_day(context or {})
    return {
        step_id: judge_sends(
            session, catalog, journey, step, [c.id], now, default_tz=default_tz, caps=caps, occasion_day=day
        )[c.id]
        for step_id, step in journey.send_steps()
    }


def preview(
    session: Session,
    journey: Journey,
    catalog: Catalog,
    customer_id: str,
    now: dt.datetime,
    settings: Settings,
    *,
    step: str | None = None,
) -> list[PreviewedStep]:
    """Render the send steps (or `step`: an id or a position such as "2.then.1") as the worker would."""
    from automation.core.context import message_context
    from automation.core.judging import PREVIEW_COUPON

    default_tz, public_url = settings.default_timezone, settings.public_url.rstrip("/")

    c = load_customer(session, customer_id)
    targets = (
        [find_send(journey, step)]
        if step is not None
        else [p for p in journey.placed.values() if p.step.send is not None]
    )
    enrollment_context = preview_context(session, journey, catalog, c, now, default_tz)
    ctx = message_context(
        journey,
        c,
        template_variables(journey, enrollment_context),
        delivery_id=0,
        unsubscribe_url=f"{public_url}/unsubscribe/PREVIEW",
        confirm_url=f"{public_url}/confirm/PREVIEW",
        brand=settings.email_from_name,
        shop=settings.shop(),
        loyalty=standings(session, catalog.programme, {c.id: now})[c.id],
        coupon=PREVIEW_COUPON.variables(),  # a preview or a test send takes no code of the pool
    )
    verdicts = send_verdicts(
        session,
        journey,
        catalog,
        c,
        now,
        default_tz=default_tz,
        caps=Caps.from_settings(settings),
        context=enrollment_context,
    )
    out = []
    for placed in targets:
        send = placed.step.send
        assert send is not None
        template = send.assign(journey.id, placed.id, c.id)[0]
        try:
            message: RenderedEmail | RenderedSms = (
                catalog.renderer.render_email(template, ctx)
                if send.channel == Channel.EMAIL
                else catalog.renderer.render_sms(template, ctx)
            )
        except RenderError as exc:
            raise UserError(f"step {placed.number} ({placed.id}) does not render: {exc}") from None
        verdict = verdicts[placed.id]
        notes = [] if verdict.status is DeliveryStatus.SENDING else [f"if due now, it {says(verdict)}"]
        out.append(PreviewedStep(placed.number, placed.id, send, template, message, notes))
    return out


def find_send(journey: Journey, ref: str) -> Placed:
    """The send step `ref` names (an id or a position); a `UserError` when there is none or it is no send."""
    placed = journey.find_step(ref)
    if placed is None:
        raise UserError(unknown("step", ref, journey.step_ids()))
    if placed.step.send is None:
        raise UserError(f"step {ref} of {journey.id!r} is a {placed.step.kind}, not a send")
    return placed
