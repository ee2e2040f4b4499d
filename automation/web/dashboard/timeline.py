"""The "why" timeline of one customer: every decision about them, in time order.

Entries come from the ledger as it stands: enrollments (entered and why, where
they wait, how they left, conversions), deliveries (the step reached, the
message made, then each deferral (until when and why, from the deferral log,
so it is still told after the message went out), capped, skipped and why,
suppressed, sent), the provider's events on those messages (delivered, opened, clicked,
bounced), the customer's tracked events, suppressions of their addresses and
when their consent last changed, and their newest choice in each topic. A
page holds the `size` newest entries before a cursor instant, shown oldest
first; whatever shares the page's oldest instant is kept together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from automation.core.planner import zone
from automation.core.statuses import Channel, DeliveryStatus, EnrollmentState
from automation.store import deferrals as deferral_log
from automation.store import topics as topic_choices
from automation.store.models import Customer, Delivery, Enrollment, Event, ProviderEvent, Suppression
from automation.store.suppressions import of_address
from automation.web.dashboard.masking import shown

PAGE = 100
#: Outcomes that end a message without sending it, shown with their reason.
ENDED = (DeliveryStatus.SKIPPED, DeliveryStatus.SUPPRESSED, DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN)
PROVIDER_WORDS = {
    "delivered": "delivered",
    "open": "opened",
    "click": "clicked",
    "bounce": "bounced",
    "dropped": "dropped by the provider",
    "deferred": "delayed by the provider",
    "processed": "accepted by the provider",
    "spamreport": "reported as spam",
    "unsubscribe": "unsubscribed",
    "undelivered": "not delivered",
    "failed": "failed at the provider",
}


@dataclass(frozen=True)
class Entry:
    at: dt.datetime
    kind: str  # journey | message | provider | event | suppression | consent | topic
    title: str
    detail: str = ""
    journey: str | None = None


@dataclass(frozen=True)
class Timeline:
    entries: list[Entry]
    earlier: dt.datetime | None  # the cursor for the previous page, when there is one


def _local(at: dt.datetime, tz: ZoneInfo) -> str:
    return f"{at.astimezone(tz):%Y-%m-%d %H:%M} {tz.key}"


def _enrollments(s: Session, c: Customer, before: dt.datetime, limit: int) -> Iterator[Entry]:
    rows = s.scalars(
        select(Enrollment)
        .where(
            Enrollment.customer_id == c.id,
            or_(
                Enrollment.entered_at < before,
                Enrollment.exited_at < before,
                Enrollment.converted_at < before,
            ),
        )
        .order_by(Enrollment.entered_at.desc())
        .limit(limit)
    )
    for e in rows:
        why = f"campaign {e.campaign_id}" if e.campaign_id else f"occurrence {e.occurrence_key}"
        occurred = f"; the occasion is of {e.occurred_at:%Y-%m-%d %H:%M} UTC" if e.occurred_at else ""
        yield Entry(
            e.entered_at, "journey", f"entered {e.journey_id}", f"because of {why}{occurred}", e.journey_id
        )
        if e.state == EnrollmentState.ACTIVE and e.next_step_id:
            when = f" at {e.next_at:%Y-%m-%d %H:%M} UTC" if e.next_at else ""
            yield Entry(e.entered_at, "journey", f"in {e.journey_id}: next step {e.next_step_id}{when}")
        if e.converted_at is not None:
            yield Entry(e.converted_at, "journey", f"converted in {e.journey_id}", journey=e.journey_id)
        if e.exited_at is not None:
            reason = e.exit_reason or e.state
            yield Entry(e.exited_at, "journey", f"left {e.journey_id}: {reason}", journey=e.journey_id)
        elif e.state not in (EnrollmentState.ACTIVE, EnrollmentState.COMPLETED):
            yield Entry(
                e.entered_at, "journey", f"{e.journey_id}: {e.state.replace('_', ' ')}", journey=e.journey_id
            )


def _outcome(d: Delivery, tz: ZoneInfo, full: bool) -> Entry | None:
    journey = d.journey_id
    if d.status == DeliveryStatus.DEFERRED:
        title, detail = _deferral(d.channel, d.reason, d.due_at, tz)
        return Entry(d.updated_at, "message", title, detail, journey)
    if d.status == DeliveryStatus.HELD_OUT:
        return Entry(d.created_at, "message", f"{d.channel} not sent ({d.reason})", journey=journey)
    if d.status in ENDED:
        return Entry(
            d.updated_at,
            "message",
            f"{d.channel} {d.status}: {d.reason or 'no reason given'}",
            journey=journey,
        )
    if d.status == DeliveryStatus.SENT and d.sent_at is not None:
        via = f" via {d.provider}" if d.provider else ""
        return Entry(
            d.sent_at, "message", f"{d.channel} sent to {shown(d.address, full)}{via}", journey=journey
        )
    if d.status == DeliveryStatus.QUEUED:
        return Entry(
            d.created_at, "message", f"{d.channel} due at {d.due_at:%Y-%m-%d %H:%M} UTC", journey=journey
        )
    return None


def _deferral(channel: str, reason: str | None, until: dt.datetime, tz: ZoneInfo) -> tuple[str, str]:
    title = f"{channel} deferred ({reason or 'waiting'}) until {until:%Y-%m-%d %H:%M} UTC"
    return title, f"{_local(until, tz)} for the customer"


def _deliveries(
    s: Session, c: Customer, before: dt.datetime, limit: int, tz: ZoneInfo, full: bool
) -> Iterator[Entry]:
    rows = list(
        s.scalars(
            select(Delivery)
            .where(Delivery.customer_id == c.id, Delivery.created_at < before)
            .order_by(Delivery.created_at.desc(), Delivery.id.desc())
            .limit(limit)
        )
    )
    by_id = {d.id: d for d in rows}
    logged = deferral_log.of(s, list(by_id))
    for d in rows:
        yield Entry(
            d.created_at,
            "message",
            f"step {d.step_id} reached: {d.channel} message made from {d.template}",
            f"due {d.due_at:%Y-%m-%d %H:%M} UTC (message #{d.id})",
            d.journey_id,
        )
        if d.status == DeliveryStatus.DEFERRED and any(x.delivery_id == d.id for x in logged):
            continue  # the log below says it, with the instant it was judged
        outcome = _outcome(d, tz, full)
        if outcome is not None and outcome.at < before:
            yield outcome
    for x in logged:
        d = by_id[x.delivery_id]
        title, detail = _deferral(d.channel, x.reason, x.until, tz)
        yield Entry(x.judged_at, "message", title, detail, d.journey_id)
    if not rows:
        return
    events = s.execute(
        select(ProviderEvent.delivery_id, ProviderEvent.event_type, ProviderEvent.occurred_at)
        .where(ProviderEvent.delivery_id.in_(list(by_id)), ProviderEvent.occurred_at < before)
        .order_by(ProviderEvent.occurred_at.desc())
        .limit(limit)
    )
    for delivery_id, kind, at in events:
        word = PROVIDER_WORDS.get(kind, kind.replace("_", " "))
        journey = by_id[delivery_id].journey_id if delivery_id in by_id else None
        yield Entry(at, "provider", f"message #{delivery_id} {word}", journey=journey)


def _events(s: Session, c: Customer, before: dt.datetime, limit: int) -> Iterator[Entry]:
    rows = s.execute(
        select(Event.name, Event.occurred_at)
        .where(Event.customer_id == c.id, Event.occurred_at < before)
        .order_by(Event.occurred_at.desc())
        .limit(limit)
    )
    for name, at in rows:
        yield Entry(at, "event", f"event {name}")


def _suppressions(s: Session, c: Customer, before: dt.datetime, full: bool) -> Iterator[Entry]:
    """Kept in clear or, for an address of an erased customer that came back, as its hash."""
    addresses = [(ch, a) for ch, a in ((Channel.EMAIL, c.email), (Channel.SMS, c.phone)) if a]
    for channel, address in addresses:
        row = s.scalar(select(Suppression).where(of_address(channel, address)))
        if row is not None and row.created_at < before:
            yield Entry(
                row.created_at,
                "suppression",
                f"{channel} {shown(address, full)} suppressed: {row.reason}",
                f"source: {row.source}",
            )


def _consent(c: Customer, before: dt.datetime) -> Iterator[Entry]:
    for trait in ("email_opt_in", "sms_opt_in"):
        since = (c.trait_times or {}).get(trait)
        if not since:
            continue
        try:
            at = dt.datetime.fromisoformat(since).astimezone(dt.UTC)
        except ValueError:
            continue
        if at < before:
            state = "given" if getattr(c, trait) else "withdrawn"
            yield Entry(at, "consent", f"{trait.removesuffix('_opt_in')} consent {state}")


def _topics(s: Session, c: Customer, before: dt.datetime) -> Iterator[Entry]:
    """Each topic's newest choice (older ones are replaced: newest wins), with how it was made."""
    for topic, choice in topic_choices.of(s, [c.id]).get(c.id, {}).items():
        if choice.chosen_at < before:
            state = "joined" if choice.subscribed else "left"
            yield Entry(choice.chosen_at, "topic", f"topic {topic} {state}", f"how: {choice.how}")


def timeline(
    s: Session,
    c: Customer,
    *,
    before: dt.datetime | None,
    default_tz: str,
    full: bool,
    size: int = PAGE,
) -> Timeline:
    """The `size` newest entries before `before` (default: all time), oldest first."""
    edge = before or dt.datetime.max.replace(tzinfo=dt.UTC)
    tz = zone(c.timezone, default_tz)
    found = [
        *_enrollments(s, c, edge, size + 1),
        *_deliveries(s, c, edge, size + 1, tz, full),
        *_events(s, c, edge, size + 1),
        *_suppressions(s, c, edge, full),
        *_consent(c, edge),
        *_topics(s, c, edge),
    ]
    found = sorted((e for e in found if e.at < edge), key=lambda e: e.at)
    if len(found) <= size:
        return Timeline(found, None)
    cut = found[-size].at
    return Timeline([e for e in found if e.at >= cut], cut)
