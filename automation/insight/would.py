"""Would they receive it? A send judged now, nothing sent: the worker's own judging function.

`journeys preview`, `journeys explain` and `campaign send --dry-run` ask what
the worker would decide for a message due at an instant. The facts are read
here, a chunk of customers at a time, as the worker reads them for a batch
(address, suppression, consent, the step's `if`, the time zone, the counted
messages around the instant and the pending ones that outrank it), and the
verdict is `automation.core.judging.judge`, the very function the worker calls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import case, select, true
from sqlalchemy.orm import Session

from automation.config import Settings
from automation.core import judging, planner, rules
from automation.core.journeys import Journey, SendStep
from automation.core.statuses import Channel, DeliveryStatus, EnrollmentState
from automation.definitions.catalog import Catalog
from automation.deliver.ledger import COUNTED, TO_GO
from automation.store import suppressions
from automation.store import topics as topic_choices
from automation.store.filter_sql import compile_filter
from automation.store.models import Customer, Delivery, Suppression

#: A message not yet made goes after every pending one of the same priority and due instant.
LAST = 2**62


@dataclass(frozen=True)
class Caps:
    """The frequency caps' settings (AUTOMATION_EMAIL_CAP_DAY, ..._WEEK, AUTOMATION_SMS_CAP_DAY)."""

    email_day: int
    email_week: int
    sms_day: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Caps:
        return cls(settings.email_cap_day, settings.email_cap_week, settings.sms_cap_day)

    def of(self, channel: Channel) -> tuple[rules.CapRule, ...]:
        return judging.caps(channel, self.email_day, self.email_week, self.sms_day)


def _unrendered() -> judging.Composed[None]:
    """Nothing is rendered here: the judge's message rules have nothing to say."""
    return judging.Composed(None)


_UNRENDERED = _unrendered


def _address(channel: Channel) -> object:
    return Customer.email if channel is Channel.EMAIL else Customer.phone


def judge_sends(
    s: Session,
    catalog: Catalog,
    journey: Journey,
    step: SendStep,
    customer_ids: Sequence[str],
    due_at: dt.datetime,
    *,
    default_tz: str,
    caps: Caps,
    occasion_day: dt.date | None = None,
) -> dict[str, judging.Verdict[None]]:
    """Each customer's verdict for `step` of `journey` due at `due_at`, as the worker would judge it."""
    channel = Channel(step.channel)
    address = _address(channel)
    suppressed = (
        select(Suppression.reason)
        .where(Suppression.channel == channel, suppressions.matches(address))  # type: ignore[arg-type]
        .limit(1)
        .scalar_subquery()
    )
    holds = case((compile_filter(step.if_), True), else_=False) if step.if_ is not None else true()
    rows = s.execute(select(Customer, suppressed, holds).where(Customer.id.in_(list(customer_ids)))).all()
    channel_caps = caps.of(channel)
    counted, ahead = _around(s, catalog, journey, channel, customer_ids, due_at, channel_caps)
    choices = topic_choices.of(s, customer_ids) if journey.topic_id else {}
    out = {}
    for row in rows:
        customer, reason = row[0], row[1]
        facts = judging.Facts.of(
            customer,
            enrollment_state=EnrollmentState.ACTIVE,
            suppressed=reason,
            timezone=planner.zone(customer.timezone, default_tz),
            if_holds=bool(row[2]) if step.if_ is not None else None,
            counted=counted.get(customer.id, []),
            first_due_at=due_at,
            occasion_day=occasion_day,
            ahead=ahead.get(customer.id, []),
            in_topic=topic_choices.admits(catalog, journey, channel, choices.get(customer.id, {})),
        )
        one = judging.Case(channel, due_at, journey, step, facts, channel_caps, _UNRENDERED)
        out[customer.id] = judging.judge(one)
    return out


def _around(
    s: Session,
    catalog: Catalog,
    journey: Journey,
    channel: Channel,
    customer_ids: Sequence[str],
    due_at: dt.datetime,
    channel_caps: Sequence[rules.CapRule],
) -> tuple[dict[str, list[dt.datetime]], dict[str, list[dt.datetime]]]:
    """Per customer: the due instants of counted messages, and of pending ones that outrank this one."""
    if not journey.frequency_cap or journey.transactional:
        return {}, {}
    window = judging.max_window(channel_caps)
    found = s.execute(
        select(Delivery.customer_id, Delivery.status, Delivery.due_at, Delivery.journey_id).where(
            Delivery.customer_id.in_(list(customer_ids)),
            Delivery.channel == channel,
            Delivery.transactional.is_(False),
            Delivery.status.in_((*COUNTED, *TO_GO)),
            Delivery.due_at > due_at - window,
            Delivery.due_at < due_at + window,
        )
    )
    counted: dict[str, list[dt.datetime]] = {}
    ahead: dict[str, list[dt.datetime]] = {}
    for cid, status, due, jid in found:
        if status in COUNTED:
            counted.setdefault(cid, []).append(due)
            continue
        rival = catalog.get(jid)
        if rival is None or not rival.frequency_cap:
            continue
        if judging.outranks(journey.priority, due_at, LAST, (rival.priority, due, 0)):
            ahead.setdefault(cid, []).append(due)
    return counted, ahead


def says(verdict: judging.Verdict[None]) -> str:
    """What a verdict means for the customer, in words."""
    if verdict.status is DeliveryStatus.SENDING:
        return "would be sent"
    if verdict.status is DeliveryStatus.DEFERRED and verdict.due_at is not None:
        return f"would wait ({verdict.reason}) until {verdict.due_at.isoformat()}"
    return f"would not be sent: {verdict.status} ({verdict.reason})"
