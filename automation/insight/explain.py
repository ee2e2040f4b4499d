"""One customer and one journey at `now`, nothing sent: `journeys explain` and `journeys preview`.

`explain` walks the same conditions as the tick, in the order the tick applies
them (trigger, look-back, audience, re-entry), and names the first that keeps
the customer out. `preview` renders each send step with the context the
customer would get: their latest enrollment's if they have one, else a
plausible occurrence (latest matching event, next anniversary, ...).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from automation.core import planner
from automation.core.durations import format_duration
from automation.core.filters import Filter, describe
from automation.core.journeys import Cooldown, Journey, SendStep
from automation.core.statuses import Channel
from automation.definitions.catalog import Catalog
from automation.definitions.rendering import RenderedEmail, RenderedSms, RenderError
from automation.enroll import entry as enroll
from automation.errors import UserError
from automation.store.filter_sql import compile_filter
from automation.store.models import Customer, CustomerEventStat, Enrollment, Event


@dataclass(frozen=True)
class Found:
    """The customer's latest occurrence of the trigger (look-back not applied), or why there is none."""

    occurrence: planner.Occurrence | None
    why_not: str = ""


@dataclass
class Explanation:
    enters: bool
    lines: list[str] = field(default_factory=list)


def load_customer(session: Session, customer_id: str) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise UserError(f"no customer with id {customer_id!r}")
    return customer


def _latest_event(session: Session, journey: Journey, c: Customer, now: dt.datetime) -> Found:
    trig = journey.trigger.event
    assert trig is not None
    rows = session.execute(
        select(Event.event_key, Event.occurred_at, Event.properties)
        .where(Event.customer_id == c.id, Event.name == trig.name, Event.occurred_at <= now)
        .order_by(Event.occurred_at.desc())
    )
    for key, at, props in rows:
        if enroll.event_matches(journey, props or {}):
            return Found(planner.Occurrence(key, at, enroll.event_context(trig.name, props or {}, at)))
    where = f" matching {trig.where}" if trig.where else ""
    return Found(None, f"trigger not met: no {trig.name!r} event{where} at or before now")


def _latest_tier_change(
    session: Session, journey: Journey, c: Customer, now: dt.datetime, order: tuple[str, ...]
) -> Found:
    trig = journey.trigger.tier_change
    assert trig is not None
    rows = session.execute(
        select(Event.event_key, Event.occurred_at, Event.properties)
        .where(Event.customer_id == c.id, Event.name == "tier_changed", Event.occurred_at <= now)
        .order_by(Event.occurred_at.desc())
    )
    for key, at, props in rows:
        old, new = (props or {}).get("from"), (props or {}).get("to")
        if planner.tier_change_matches(trig, old, new, order):
            return Found(planner.Occurrence(key, at, {"old_tier": old, "new_tier": new}))
    wanted = [f"direction {trig.direction}"] + ([f"to {', '.join(trig.to)}"] if trig.to else [])
    return Found(None, f"trigger not met: no tier change ({'; '.join(wanted)}) at or before now")


def _lapse(session: Session, journey: Journey, c: Customer, now: dt.datetime) -> Found:
    trig = journey.trigger.inactivity
    assert trig is not None
    last_at = session.scalar(
        select(CustomerEventStat.last_at).where(
            CustomerEventStat.customer_id == c.id, CustomerEventStat.name == trig.event
        )
    )
    if last_at is None:
        return Found(
            None,
            f"trigger not met: never had a {trig.event!r} event (who never had it is not inactive)",
        )
    lapse_at = last_at + dt.timedelta(days=trig.days)
    if lapse_at > now:
        return Found(
            None,
            f"trigger not met: last {trig.event!r} at {last_at.isoformat()}; "
            f"{trig.days} days without one are reached at {lapse_at.isoformat()}",
        )
    return Found(
        planner.Occurrence(last_at.isoformat(), lapse_at, enroll.inactivity_context(trig.days, last_at))
    )


def _origin(c: Customer, trait: str) -> Any:
    if trait in ("signed_up_at", "birthday"):
        return getattr(c, trait)
    return (c.traits or {}).get(trait)


def _anniversary(journey: Journey, c: Customer, now: dt.datetime, default_tz: str) -> Found:
    trig = journey.trigger.anniversary
    assert trig is not None
    tz = planner.zone(c.timezone, default_tz)
    day = enroll.origin_date(_origin(c, trig.trait), tz)
    if day is None:
        return Found(None, f"trigger not met: the customer has no date in trait {trig.trait!r}")
    last = planner.last_anniversary(day, trig.at, tz, now)
    nxt = planner.next_anniversary(day, trig.at, tz, now)
    if last is None or last.context["years"] < trig.first_year():
        return Found(
            None,
            f"trigger not met: the next {trig.trait} anniversary is at {nxt.occurred_at.isoformat()} "
            f"({tz.key} {trig.at:%H:%M}, years {nxt.context['years']}); min_years is {trig.first_year()}",
        )
    return Found(last)


def latest_occurrence(
    session: Session, journey: Journey, catalog: Catalog, c: Customer, now: dt.datetime, default_tz: str
) -> Found:
    kind = journey.trigger.kind
    if kind == "event":
        return _latest_event(session, journey, c, now)
    if kind == "tier_change":
        return _latest_tier_change(session, journey, c, now, catalog.tier_order)
    if kind == "inactivity":
        return _lapse(session, journey, c, now)
    if kind == "anniversary":
        return _anniversary(journey, c, now, default_tz)
    return Found(None, "manual journey: nobody enters at a tick, only through `automation campaign send`")


def holds(session: Session, customer_id: str, f: Filter | None) -> bool:
    """Whether the filter holds for this customer, judged by the database as the tick does."""
    return (
        session.scalar(select(Customer.id).where(Customer.id == customer_id, compile_filter(f))) is not None
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


def _lookback(journey: Journey) -> dt.timedelta:
    trig = journey.trigger.body()
    return getattr(trig, "lookback", dt.timedelta(0))


def explain(
    session: Session, journey: Journey, catalog: Catalog, customer_id: str, now: dt.datetime, default_tz: str
) -> Explanation:
    """Would this customer enter the journey at `now`? If not, the first condition that keeps them out."""
    c = load_customer(session, customer_id)
    if not journey.enabled:
        return Explanation(False, ["journey is disabled (enabled: false)"])
    found = latest_occurrence(session, journey, catalog, c, now, default_tz)
    occ = found.occurrence
    if occ is None:
        return Explanation(False, [found.why_not])
    lines = [f"trigger met: occurrence {occ.key} at {occ.occurred_at.isoformat()}"]
    lookback = _lookback(journey)
    if now - occ.occurred_at > lookback:
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
    key = planner.occurrence_key(journey, occ.key)
    existing = session.execute(
        select(Enrollment.entered_at, Enrollment.state).where(
            Enrollment.journey_id == journey.id,
            Enrollment.customer_id == c.id,
            Enrollment.occurrence_key == key,
        )
    ).first()
    if existing is not None:
        policy = "re_entry: once" if journey.re_entry == "once" else "once per occurrence"
        lines.append(
            f"already enrolled ({policy}): entered at {existing.entered_at.isoformat()}, now {existing.state}"
        )
        return Explanation(False, lines)
    if isinstance(journey.re_entry, Cooldown):
        last = session.scalar(
            select(Enrollment.entered_at)
            .where(Enrollment.journey_id == journey.id, Enrollment.customer_id == c.id)
            .order_by(Enrollment.entered_at.desc())
            .limit(1)
        )
        if last is not None and last > now - journey.re_entry.cooldown:
            lines.append(
                f"cool-down: last entered at {last.isoformat()}; may enter again after "
                f"{(last + journey.re_entry.cooldown).isoformat()}"
            )
            return Explanation(False, lines)
    lines.append("would enter now")
    return Explanation(True, lines)


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
    kind = journey.trigger.kind
    if kind == "anniversary":
        anniversary = journey.trigger.anniversary
        assert anniversary is not None
        tz = planner.zone(c.timezone, default_tz)
        day = enroll.origin_date(_origin(c, anniversary.trait), tz)
        if day is None:
            raise UserError(f"customer {c.id!r} has no date in trait {anniversary.trait!r} to preview with")
        due = planner.anniversary_due(anniversary, day, tz, now)
        return (due or planner.next_anniversary(day, anniversary.at, tz, now)).context
    if kind == "manual":
        return {"campaign": {"id": "preview"}}
    if kind == "tier_change" and c.tier:
        found = _latest_tier_change(session, journey, c, now, catalog.tier_order)
        if found.occurrence is None:
            order = list(catalog.tier_order)
            below = order[order.index(c.tier) - 1] if c.tier in order[1:] else None
            return {"old_tier": below, "new_tier": c.tier}
        return found.occurrence.context
    found = latest_occurrence(session, journey, catalog, c, now, default_tz)
    if found.occurrence is None and kind == "inactivity":
        trig = journey.trigger.inactivity
        assert trig is not None
        last_at = session.scalar(
            select(CustomerEventStat.last_at).where(
                CustomerEventStat.customer_id == c.id, CustomerEventStat.name == trig.event
            )
        )
        if last_at is not None:
            return enroll.inactivity_context(trig.days, last_at)
    if found.occurrence is None:
        raise UserError(f"nothing to preview for customer {c.id!r}: {found.why_not}")
    return found.occurrence.context


@dataclass(frozen=True)
class PreviewedStep:
    number: int
    step_id: str
    step: SendStep
    message: RenderedEmail | RenderedSms
    notes: list[str]


def _notes(session: Session, journey: Journey, step: SendStep, c: Customer) -> list[str]:
    notes = []
    if step.channel == Channel.EMAIL and not c.email:
        notes.append("the customer has no email address: the send would be skipped")
    if step.channel == Channel.SMS and not c.phone:
        notes.append("the customer has no phone number: the send would be skipped")
    if step.channel == Channel.EMAIL and not journey.transactional and not c.email_opt_in:
        notes.append("the customer has not opted in to email: the send would be skipped")
    if step.channel == Channel.SMS and not c.sms_opt_in:
        notes.append("the customer has not opted in to SMS: the send would be skipped")
    if step.if_ is not None and not holds(session, c.id, step.if_):
        notes.append(f"if: {describe(step.if_)} does not hold now: the send would be skipped")
    return notes


def preview(
    session: Session,
    journey: Journey,
    catalog: Catalog,
    customer_id: str,
    now: dt.datetime,
    *,
    default_tz: str,
    brand: str,
    public_url: str,
    step_number: int | None = None,
    shop: dict[str, Any] | None = None,
) -> list[PreviewedStep]:
    """Render the send steps (or step `step_number`, 1-based position) for this customer."""
    from automation.core.context import message_context

    c = load_customer(session, customer_id)
    ids = journey.step_ids()
    if step_number is not None:
        if not 1 <= step_number <= len(ids):
            raise UserError(f"journey {journey.id!r} has steps 1 to {len(ids)}, not {step_number}")
        if journey.steps[step_number - 1].send is None:
            raise UserError(f"step {step_number} of {journey.id!r} is a wait, not a send")
    numbers = [step_number] if step_number else [n for n, s in enumerate(journey.steps, 1) if s.send]
    enrollment_context = preview_context(session, journey, catalog, c, now, default_tz)
    ctx = message_context(
        journey,
        c,
        enrollment_context,
        delivery_id=0,
        unsubscribe_url=f"{public_url.rstrip('/')}/unsubscribe/PREVIEW",
        brand=brand,
        shop=shop,
    )
    out = []
    for n in numbers:
        step = journey.steps[n - 1].send
        assert step is not None
        try:
            message: RenderedEmail | RenderedSms = (
                catalog.renderer.render_email(step.template, ctx)
                if step.channel == Channel.EMAIL
                else catalog.renderer.render_sms(step.template, ctx)
            )
        except RenderError as exc:
            raise UserError(f"step {n} ({ids[n - 1]}) does not render: {exc}") from None
        out.append(PreviewedStep(n, ids[n - 1], step, message, _notes(session, journey, step, c)))
    return out
