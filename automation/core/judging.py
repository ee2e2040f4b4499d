"""Every verdict on a send, at its due instant. Pure.

The worker gathers the facts of a whole batch of deliveries in a few set-based
queries (`automation.deliver.ledger`), and `journeys preview` gathers the same
facts for one customer; both ask `judge` for the call. The rules run in the
order of `RULES`, and the first that has something to say wins: the journey or
step is gone, the enrollment ended, stale, no address, suppressed, no consent,
out of the journey's topic (`topic: ID`), a step `if` that does not hold (or
cannot be evaluated), quiet hours, the frequency cap, the step's coupon pool
empty (the code is taken only here); then the message itself
is composed and judged: it could not be built, the provider cannot take it, it
is over `max_sms_segments`.

A deferral that would carry a message past its `send_within` or past the local
day of its dated occasion (a birthday) makes it stale instead. In a contested
cap slot, the customer's pending messages that outrank this one (`outranks`:
higher journey priority, then earlier due) count as if sent.

A rule is a function of the `Case` returning a `Verdict` or None, so a new
rule (topics, holdouts, priority, staleness) is one function put in its place
in `RULES`. The message is composed only when every rule before it lets the
send go, so a skipped or deferred row is never rendered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from automation.core import rules
from automation.core.coupons import Coupon, empty_reason
from automation.core.durations import format_duration
from automation.core.filters import describe
from automation.core.journeys import Journey, SendStep
from automation.core.statuses import ENDED_EARLY, Channel, DeliveryStatus, EnrollmentState
from automation.core.topics import Choice, Topic, subscribed

DAY = dt.timedelta(hours=24)
WEEK = dt.timedelta(days=7)

M = TypeVar("M")
PREVIEW_COUPON = Coupon("PREVIEW-CODE")


@dataclass(frozen=True)
class Composed(Generic[M]):
    """A message built for its provider, with what the judge reads of it."""

    message: M
    segments: int | None = None
    problem: str | None = None  # why the provider cannot take it, said by the provider


@dataclass(frozen=True)
class Unbuildable:
    """The message could not be built (a template failing on this customer's data)."""

    reason: str


Composition = Composed[M] | Unbuildable


@dataclass(frozen=True)
class Verdict(Generic[M]):
    """What to do with a delivery at its due instant; `sending` (go ahead) carries the composed message."""

    status: DeliveryStatus
    reason: str | None = None
    due_at: dt.datetime | None = None
    composed: Composed[M] | None = None


@dataclass(frozen=True)
class Facts:
    """What the database said about one delivery's person, read for the whole batch at once.

    `if_holds` is None when the step has no `if`, and a string when it could not be
    evaluated for this person (the reason). `ahead` holds the due instants of the
    person's pending messages that outrank this one for a cap slot.
    """

    enrollment_state: EnrollmentState
    email: str | None
    phone: str | None
    email_opt_in: bool
    sms_opt_in: bool
    suppressed: str | None
    timezone: ZoneInfo
    counted: Sequence[dt.datetime] = ()
    if_holds: bool | str | None = None
    first_due_at: dt.datetime | None = None
    queued_at: dt.datetime | None = None
    occasion_day: dt.date | None = None
    ahead: Sequence[dt.datetime] = ()
    in_topic: bool = True  # see `in_topic`
    # An operator's retry of a message whose enrollment the removal of its journey ended: the
    # removal, not the customer, ended it, so once the journey is back the retry may go.
    retried_after_removal: bool = False

    @classmethod
    def of(
        cls,
        customer: Any,
        *,
        enrollment_state: EnrollmentState,
        suppressed: str | None,
        timezone: ZoneInfo,
        **read: Any,
    ) -> Facts:
        """The facts of one customer row (its addresses and consents) with what was read around it."""
        return cls(
            enrollment_state=enrollment_state,
            email=customer.email,
            phone=customer.phone,
            email_opt_in=bool(customer.email_opt_in),
            sms_opt_in=bool(customer.sms_opt_in),
            suppressed=suppressed,
            timezone=timezone,
            **read,
        )


@dataclass(frozen=True)
class Case(Generic[M]):
    """One delivery to judge: where it belongs, its facts, and how to compose its message."""

    channel: Channel
    due_at: dt.datetime
    journey: Journey | None
    step: SendStep | None
    facts: Facts | None  # None: the customer or the enrollment is gone
    caps: Sequence[rules.CapRule]
    compose: Callable[[], Composition[M]] = field(compare=False)
    # Takes (or finds already held) a code of the step's `coupon` pool; None when it is empty.
    # Previews (`would`, explain) take none: they judge as if the pool had a code.
    take_coupon: Callable[[], Coupon | None] = field(default=lambda: PREVIEW_COUPON, compare=False)

    @cached_property
    def composition(self) -> Composition[M]:
        return self.compose()

    @cached_property
    def coupon(self) -> Coupon | None:
        return self.take_coupon()

    @property
    def address(self) -> str | None:
        assert self.facts is not None
        return self.facts.email if self.channel is Channel.EMAIL else self.facts.phone


Rule = Callable[[Case[M]], Verdict[M] | None]


def caps(channel: Channel, email_day: int, email_week: int, sms_day: int) -> tuple[rules.CapRule, ...]:
    """The cross-journey frequency caps of one channel."""
    if channel is Channel.SMS:
        return (rules.CapRule(sms_day, DAY),)
    return (rules.CapRule(email_day, DAY), rules.CapRule(email_week, WEEK))


def max_window(channel_caps: Sequence[rules.CapRule]) -> dt.timedelta:
    return max(rule.window for rule in channel_caps)


def consents(channel: Channel, journey: Journey, facts: Facts) -> bool:
    """SMS always needs `sms_opt_in`; email needs `email_opt_in` unless the journey is transactional."""
    if channel is Channel.SMS:
        return facts.sms_opt_in
    return journey.transactional or facts.email_opt_in


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


def lapses_at(journey: Journey, first_due_at: dt.datetime | None) -> dt.datetime | None:
    """The instant past which a message of this journey is too late to send (`send_within`), or None."""
    if journey.send_within is None or first_due_at is None:
        return None
    return first_due_at + journey.send_within


def contends(lapses: dt.datetime | None, at: dt.datetime) -> bool:
    """Whether a rival can still take a cap slot at `at`: one already too late will be skipped, not sent."""
    return lapses is None or at <= lapses


def stale_at(journey: Journey, facts: Facts, at: dt.datetime) -> str | None:
    """Why a message sent at `at` would be too late, or None.

    Late means more than `send_within` after its step first fell due, or after
    the customer's local day of the dated occasion it celebrates.
    """
    lapses = lapses_at(journey, facts.first_due_at)
    if lapses is not None and at > lapses:
        assert journey.send_within is not None
        return f"stale: not sent within {format_duration(journey.send_within)} of falling due"
    if facts.occasion_day is not None and at.astimezone(facts.timezone).date() > facts.occasion_day:
        return f"stale: past the local day of the occasion ({facts.occasion_day.isoformat()})"
    return None


def _deferred(case: Case[M], reason: str, release: dt.datetime) -> Verdict[M]:
    """Deferred to `release`, unless that is too late: then stale."""
    assert case.journey is not None and case.facts is not None
    stale = stale_at(case.journey, case.facts, release)
    if stale:
        return Verdict(DeliveryStatus.SKIPPED, f"{stale} ({reason})")
    return Verdict(DeliveryStatus.DEFERRED, reason, release)


# ---------------------------------------------------------------- the rules, in order


def gone(case: Case[M]) -> Verdict[M] | None:
    if case.journey is None or case.step is None:
        return Verdict(DeliveryStatus.SKIPPED, "journey or step no longer exists")
    if case.facts is None:
        return Verdict(DeliveryStatus.SKIPPED, "customer not found")
    return None


def enrollment_ended(case: Case[M]) -> Verdict[M] | None:
    assert case.facts is not None
    if case.facts.enrollment_state in ENDED_EARLY and not case.facts.retried_after_removal:
        return Verdict(DeliveryStatus.SKIPPED, f"enrollment {case.facts.enrollment_state}")
    return None


def stale(case: Case[M]) -> Verdict[M] | None:
    """Too late already: judged at the later of its due instant and its enqueueing."""
    assert case.facts is not None and case.journey is not None
    reason = stale_at(case.journey, case.facts, max(case.due_at, case.facts.queued_at or case.due_at))
    return Verdict(DeliveryStatus.SKIPPED, reason) if reason else None


def no_address(case: Case[M]) -> Verdict[M] | None:
    if not case.address:
        return Verdict(DeliveryStatus.SKIPPED, f"no {case.channel.address_name}")
    return None


def suppressed(case: Case[M]) -> Verdict[M] | None:
    assert case.facts is not None
    if case.facts.suppressed:
        return Verdict(DeliveryStatus.SUPPRESSED, f"address suppressed ({case.facts.suppressed})")
    return None


def no_consent(case: Case[M]) -> Verdict[M] | None:
    assert case.facts is not None and case.journey is not None
    if not consents(case.channel, case.journey, case.facts):
        return Verdict(DeliveryStatus.SKIPPED, f"consent: no {case.channel}_opt_in")
    return None


def out_of_topic(case: Case[M]) -> Verdict[M] | None:
    assert case.facts is not None and case.journey is not None
    if not case.facts.in_topic:
        return Verdict(DeliveryStatus.SKIPPED, f"topic: {case.journey.topic_id}")
    return None


def step_if(case: Case[M]) -> Verdict[M] | None:
    assert case.facts is not None and case.step is not None
    if case.step.if_ is None:
        return None
    holds = case.facts.if_holds
    if isinstance(holds, str):
        return Verdict(DeliveryStatus.FAILED, f"if: {describe(case.step.if_)} cannot be evaluated: {holds}")
    if not holds:
        return Verdict(DeliveryStatus.SKIPPED, f"if: {describe(case.step.if_)} does not hold")
    return None


def quiet_hours(case: Case[M]) -> Verdict[M] | None:
    assert case.facts is not None and case.journey is not None
    quiet = case.journey.quiet_hours
    if quiet is False:
        return None
    release = rules.quiet_hours_release(case.due_at, quiet.start, quiet.end, case.facts.timezone)
    return _deferred(case, "quiet hours", release) if release is not None else None


def frequency_cap(case: Case[M]) -> Verdict[M] | None:
    assert case.facts is not None and case.journey is not None
    journey = case.journey
    if not journey.frequency_cap or journey.transactional:
        return None
    release = rules.cap_release(case.due_at, [*case.facts.counted, *case.facts.ahead], case.caps)
    if release is None:
        return None
    if journey.cap_action == "skip":
        return Verdict(DeliveryStatus.SKIPPED, "frequency cap")
    return _deferred(case, "frequency cap", release)


def coupon_pool_empty(case: Case[M]) -> Verdict[M] | None:
    """A step naming a pool takes its code only once every earlier rule lets the message go."""
    assert case.step is not None
    if case.step.coupon is None or case.coupon is not None:
        return None
    return Verdict(DeliveryStatus.FAILED, empty_reason(case.step.coupon))


def unbuildable(case: Case[M]) -> Verdict[M] | None:
    built = case.composition
    return Verdict(DeliveryStatus.FAILED, built.reason) if isinstance(built, Unbuildable) else None


def provider_refuses(case: Case[M]) -> Verdict[M] | None:
    built = case.composition
    assert isinstance(built, Composed)
    return Verdict(DeliveryStatus.FAILED, built.problem) if built.problem else None


def too_many_segments(case: Case[M]) -> Verdict[M] | None:
    built = case.composition
    assert isinstance(built, Composed) and case.journey is not None
    limit = case.journey.max_sms_segments
    if limit and built.segments is not None and built.segments > limit:
        return Verdict(DeliveryStatus.FAILED, f"SMS is {built.segments} segments, over the maximum {limit}")
    return None


#: The judge's rules in the order they apply; the first verdict wins.
RULES: tuple[Rule[Any], ...] = (
    gone,
    enrollment_ended,
    stale,
    no_address,
    suppressed,
    no_consent,
    out_of_topic,
    step_if,
    quiet_hours,
    frequency_cap,
    coupon_pool_empty,
    unbuildable,
    provider_refuses,
    too_many_segments,
)


def judge(case: Case[M]) -> Verdict[M]:
    """The verdict for one delivery: the first rule's that applies, else send the composed message."""
    for rule in RULES:
        verdict = rule(case)
        if verdict is not None:
            return verdict
    built = case.composition
    assert isinstance(built, Composed)
    return Verdict(DeliveryStatus.SENDING, composed=built)
