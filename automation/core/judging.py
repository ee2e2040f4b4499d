"""What to do with one claimed delivery at its due instant. Pure.

The worker gathers the facts for a whole batch of deliveries in a few set-based
queries (`automation.deliver.deliverer`); this module makes each row's call from them:
enrollment ended, stale, no address, suppressed, no consent, out of the
journey's topic (`topic: ID`), a step `if` that does not hold, quiet hours,
the frequency cap — in that order, the first that applies wins. A deferral
that would carry a message past its `send_within` or past the local day of
its dated occasion (a birthday) makes it stale instead.
In a contested cap slot, the customer's pending messages that outrank this one
(`outranks`: higher journey priority, then earlier due) count as if sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from automation.core import rules
from automation.core.durations import format_duration
from automation.core.filters import describe
from automation.core.journeys import Journey, SendStep
from automation.core.statuses import ENDED_EARLY, Channel, DeliveryStatus, EnrollmentState
from automation.core.topics import Choice, Topic, subscribed

DAY = dt.timedelta(hours=24)
WEEK = dt.timedelta(days=7)


@dataclass(frozen=True)
class Verdict:
    """What to do with a claimed delivery at its due instant."""

    status: DeliveryStatus  # `sending` means go ahead; else skipped, suppressed, deferred or failed
    reason: str | None = None
    due_at: dt.datetime | None = None


@dataclass(frozen=True)
class Facts:
    """What the database said about one delivery's person, read for the whole batch at once."""

    enrollment_state: EnrollmentState
    address: str | None
    suppressed: str | None
    consent: bool
    if_holds: bool
    timezone: ZoneInfo
    counted: Sequence[dt.datetime]
    first_due_at: dt.datetime | None = None
    queued_at: dt.datetime | None = None
    occasion_day: dt.date | None = None
    ahead: Sequence[dt.datetime] = ()
    in_topic: bool = True


def in_topic(
    journey: Journey, channel: Channel, topic: Topic | None, choice: Choice | None, double_opt_in: bool
) -> bool:
    """Whether the customer's choice lets this journey's message on `channel` through its topic.

    Transactional mail has no topic; a topic governs its own channel only (an SMS step
    of an email topic's journey answers to `sms_opt_in` and STOP); a double opt-in
    sign-up journey's own mail is the confirmation request, so it goes to customers
    not yet in the topic.
    """
    if journey.topic_id is None or journey.double_opt_in or topic is None or topic.channel != channel:
        return True
    return subscribed(topic, choice, double_opt_in)


def outranks(priority: int, due_at: dt.datetime, key: int, other: tuple[int, dt.datetime, int]) -> bool:
    """Whether a rival message (priority, due, id) goes before this one in a contested cap slot."""
    return (-other[0], other[1], other[2]) < (-priority, due_at, key)


def stale_at(journey: Journey, facts: Facts, at: dt.datetime) -> str | None:
    """Why a message sent at `at` would be too late, or None.

    Late means more than `send_within` after its step first fell due, or after
    the customer's local day of the dated occasion it celebrates.
    """
    first = facts.first_due_at
    if journey.send_within is not None and first is not None and at - first > journey.send_within:
        return f"stale: not sent within {format_duration(journey.send_within)} of falling due"
    if facts.occasion_day is not None and at.astimezone(facts.timezone).date() > facts.occasion_day:
        return f"stale: past the local day of the occasion ({facts.occasion_day.isoformat()})"
    return None


def _deferred(journey: Journey, facts: Facts, reason: str, release: dt.datetime) -> Verdict:
    stale = stale_at(journey, facts, release)
    if stale:
        return Verdict(DeliveryStatus.SKIPPED, f"{stale} ({reason})")
    return Verdict(DeliveryStatus.DEFERRED, reason, release)


def caps(channel: Channel, email_day: int, email_week: int, sms_day: int) -> tuple[rules.CapRule, ...]:
    """The cross-journey frequency caps of one channel."""
    if channel is Channel.SMS:
        return (rules.CapRule(sms_day, DAY),)
    return (rules.CapRule(email_day, DAY), rules.CapRule(email_week, WEEK))


def judge(
    channel: Channel,
    due_at: dt.datetime,
    journey: Journey,
    step: SendStep,
    facts: Facts,
    channel_caps: Sequence[rules.CapRule],
) -> Verdict:
    """The verdict for one delivery due at `due_at`, from its facts."""
    if facts.enrollment_state in ENDED_EARLY:
        return Verdict(DeliveryStatus.SKIPPED, f"enrollment {facts.enrollment_state}")
    stale = stale_at(journey, facts, max(due_at, facts.queued_at or due_at))
    if stale:
        return Verdict(DeliveryStatus.SKIPPED, stale)
    if not facts.address:
        return Verdict(DeliveryStatus.SKIPPED, f"no {channel.address_name}")
    if facts.suppressed:
        return Verdict(DeliveryStatus.SUPPRESSED, f"address suppressed ({facts.suppressed})")
    if not facts.consent:
        return Verdict(DeliveryStatus.SKIPPED, f"consent: no {channel}_opt_in")
    if not facts.in_topic:
        return Verdict(DeliveryStatus.SKIPPED, f"topic: {journey.topic_id}")
    if step.if_ is not None and not facts.if_holds:
        return Verdict(DeliveryStatus.SKIPPED, f"if: {describe(step.if_)} does not hold")
    if journey.quiet_hours is not False:
        release = rules.quiet_hours_release(
            due_at, journey.quiet_hours.start, journey.quiet_hours.end, facts.timezone
        )
        if release is not None:
            return _deferred(journey, facts, "quiet hours", release)
    if journey.frequency_cap and not journey.transactional:
        release = rules.cap_release(due_at, [*facts.counted, *facts.ahead], channel_caps)
        if release is not None:
            if journey.cap_action == "skip":
                return Verdict(DeliveryStatus.SKIPPED, "frequency cap")
            return _deferred(journey, facts, "frequency cap", release)
    return Verdict(DeliveryStatus.SENDING)


def max_window(channel_caps: Sequence[rules.CapRule]) -> dt.timedelta:
    return max(rule.window for rule in channel_caps)
