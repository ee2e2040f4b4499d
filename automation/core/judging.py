"""What to do with one claimed delivery at its due instant. Pure.

The worker gathers the facts for a whole batch of deliveries in a few set-based
queries (`automation.deliver.deliverer`); this module makes each row's call from them:
enrollment ended, no address, suppressed, no consent, a step `if` that does not
hold, quiet hours, the frequency cap — in that order, the first that applies wins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from automation.core import rules
from automation.core.filters import describe
from automation.core.journeys import Journey, SendStep
from automation.core.statuses import ENDED_EARLY, Channel, DeliveryStatus, EnrollmentState

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
    if not facts.address:
        return Verdict(DeliveryStatus.SKIPPED, f"no {channel.address_name}")
    if facts.suppressed:
        return Verdict(DeliveryStatus.SUPPRESSED, f"address suppressed ({facts.suppressed})")
    if not facts.consent:
        return Verdict(DeliveryStatus.SKIPPED, f"consent: no {channel}_opt_in")
    if step.if_ is not None and not facts.if_holds:
        return Verdict(DeliveryStatus.SKIPPED, f"if: {describe(step.if_)} does not hold")
    if journey.quiet_hours is not False:
        release = rules.quiet_hours_release(
            due_at, journey.quiet_hours.start, journey.quiet_hours.end, facts.timezone
        )
        if release is not None:
            return Verdict(DeliveryStatus.DEFERRED, "quiet hours", release)
    if journey.frequency_cap and not journey.transactional:
        release = rules.cap_release(due_at, facts.counted, channel_caps)
        if release is not None:
            if journey.cap_action == "skip":
                return Verdict(DeliveryStatus.SKIPPED, "frequency cap")
            return Verdict(DeliveryStatus.DEFERRED, "frequency cap", release)
    return Verdict(DeliveryStatus.SENDING)


def max_window(channel_caps: Sequence[rules.CapRule]) -> dt.timedelta:
    return max(rule.window for rule in channel_caps)
