"""The judge, rule by rule, at fixed instants: every verdict on a send comes from `judging.judge`."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from automation.core import judging
from automation.core.journeys import Journey, SendStep
from automation.core.statuses import Channel, EnrollmentState
from automation.definitions.loader import parse_journey

NOON = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)  # 12:00 in UTC, 21:00 in Tokyo
UTC = ZoneInfo("UTC")
CAPS = judging.caps(Channel.EMAIL, 1, 3, 1)


def journey(extra: str = "", send: str = "{channel: email, template: t}") -> Journey:
    text = f"id: j\nname: J\ntrigger: {{event: {{name: e}}}}\n{extra}steps:\n  - send: {send}\n"
    parsed, problems, _ = parse_journey(text, "j.yaml")
    assert parsed is not None, problems
    return parsed


def step_of(j: Journey) -> SendStep:
    return j.send_steps()[0][1]


FACTS = judging.Facts(
    enrollment_state=EnrollmentState.ACTIVE,
    email="ada@example.com",
    phone="+15550001111",
    email_opt_in=True,
    sms_opt_in=True,
    suppressed=None,
    timezone=UTC,
)
SENDABLE: judging.Composition[str] = judging.Composed("the message", segments=None)


def case(
    j: Journey | None = None,
    channel: Channel = Channel.EMAIL,
    facts: judging.Facts | None = FACTS,
    composed: judging.Composition[str] = SENDABLE,
    **changes: Any,
) -> judging.Case[str]:
    j = j if j is not None else journey()
    if changes:
        assert facts is not None
        facts = replace(facts, **changes)
    return judging.Case(channel, NOON, j, step_of(j), facts, judging.caps(channel, 1, 3, 1), lambda: composed)


SMS = "{channel: sms, template: s}"
GOLD_ONLY = "{channel: email, template: t, if: {trait: tier, eq: gold}}"


@pytest.mark.parametrize(
    ("name", "the_case", "status", "reason"),
    [
        ("sends", case(), "sending", None),
        ("enrollment exited", case(enrollment_state=EnrollmentState.EXITED), "skipped", "enrollment exited"),
        (
            "enrollment cancelled",
            case(enrollment_state=EnrollmentState.CANCELLED),
            "skipped",
            "enrollment cancelled",
        ),
        ("no email", case(email=None), "skipped", "no email address"),
        ("no phone", case(journey(send=SMS), Channel.SMS, phone=None), "skipped", "no phone number"),
        ("suppressed", case(suppressed="bounce"), "suppressed", "address suppressed (bounce)"),
        ("no email consent", case(email_opt_in=False), "skipped", "consent: no email_opt_in"),
        (
            "transactional needs none",
            case(journey("transactional: true\n"), email_opt_in=False),
            "sending",
            None,
        ),
        (
            "no sms consent",
            case(journey(send=SMS), Channel.SMS, sms_opt_in=False),
            "skipped",
            "consent: no sms_opt_in",
        ),
        (
            "sms consent even transactional",
            case(journey("transactional: true\n", SMS), Channel.SMS, sms_opt_in=False),
            "skipped",
            "consent: no sms_opt_in",
        ),
        ("if holds", case(journey(send=GOLD_ONLY), if_holds=True), "sending", None),
        (
            "if does not hold",
            case(journey(send=GOLD_ONLY), if_holds=False),
            "skipped",
            "if: tier eq 'gold' does not hold",
        ),
        (
            "if cannot be evaluated",
            case(journey(send=GOLD_ONLY), if_holds="the database refused it (DataError)"),
            "failed",
            "if: tier eq 'gold' cannot be evaluated: the database refused it (DataError)",
        ),
        ("quiet hours", case(timezone=ZoneInfo("Asia/Tokyo")), "deferred", "quiet hours"),
        (
            "no quiet hours",
            case(journey("quiet_hours: false\n"), timezone=ZoneInfo("Asia/Tokyo")),
            "sending",
            None,
        ),
        ("daily cap defers", case(counted=[NOON - dt.timedelta(hours=1)]), "deferred", "frequency cap"),
        (
            "daily cap skips",
            case(journey("cap_action: skip\n"), counted=[NOON - dt.timedelta(hours=1)]),
            "skipped",
            "frequency cap",
        ),
        (
            "transactional is not capped",
            case(journey("transactional: true\n"), counted=[NOON - dt.timedelta(hours=1)]),
            "sending",
            None,
        ),
        (
            "the template fails on this customer",
            case(composed=judging.Unbuildable("render: t/body.txt:2: TypeError: ...")),
            "failed",
            "render: t/body.txt:2: TypeError: ...",
        ),
        (
            "the provider cannot take it",
            case(
                journey(send=SMS),
                "sms",
                composed=judging.Composed("sms", 1, "AUTOMATION_SMS_FROM is not set"),
            ),
            "failed",
            "AUTOMATION_SMS_FROM is not set",
        ),
        (
            "over max_sms_segments",
            case(journey("max_sms_segments: 1\n", SMS), Channel.SMS, composed=judging.Composed("sms", 3)),
            "failed",
            "SMS is 3 segments, over the maximum 1",
        ),
        (
            "within max_sms_segments",
            case(journey("max_sms_segments: 3\n", SMS), Channel.SMS, composed=judging.Composed("sms", 3)),
            "sending",
            None,
        ),
        ("customer gone", case(facts=None), "skipped", "customer not found"),
        (
            "stale when queued too late",
            case(journey("send_within: 6h\n"), first_due_at=NOON - dt.timedelta(hours=7)),
            "skipped",
            "stale: not sent within 6h of falling due",
        ),
        (
            "a deferral past send_within is stale",
            case(journey("send_within: 6h\n"), first_due_at=NOON, timezone=ZoneInfo("Asia/Tokyo")),
            "skipped",
            "stale: not sent within 6h of falling due (quiet hours)",
        ),
        (
            "a rival that outranks it takes the cap slot",
            case(ahead=[NOON]),
            "deferred",
            "frequency cap",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_each_rule_gives_its_verdict(
    name: str, the_case: judging.Case[str], status: str, reason: str | None
) -> None:
    verdict = judging.judge(the_case)
    assert (verdict.status, verdict.reason) == (status, reason), name


def test_a_journey_or_step_gone_is_skipped() -> None:
    gone = judging.Case(Channel.EMAIL, NOON, None, None, FACTS, CAPS, lambda: SENDABLE)
    assert judging.judge(gone) == judging.Verdict("skipped", "journey or step no longer exists")


def test_the_first_rule_that_applies_wins() -> None:
    everything = case(
        journey(send=GOLD_ONLY),
        suppressed="stop",
        email_opt_in=False,
        if_holds=False,
        timezone=ZoneInfo("Asia/Tokyo"),
    )
    assert judging.judge(everything).status == "suppressed"
    assert (
        judging.judge(case(email_opt_in=False, timezone=ZoneInfo("Asia/Tokyo"))).reason
        == "consent: no email_opt_in"
    )


def test_a_deferral_carries_the_release_instant() -> None:
    verdict = judging.judge(case(timezone=ZoneInfo("Asia/Tokyo")))
    assert verdict.due_at == dt.datetime(2026, 11, 22, 23, 0, tzinfo=dt.UTC)  # 08:00 in Tokyo


def test_a_send_carries_the_composed_message() -> None:
    verdict = judging.judge(case())
    assert verdict.status == "sending" and verdict.composed == SENDABLE


def test_the_message_is_composed_only_when_every_earlier_rule_lets_it_go() -> None:
    calls: list[str] = []

    def compose() -> judging.Composition[str]:
        calls.append("composed")
        return SENDABLE

    j = journey()
    for facts, expected in ((replace(FACTS, email_opt_in=False), []), (FACTS, ["composed"])):
        judging.judge(judging.Case(Channel.EMAIL, NOON, j, step_of(j), facts, CAPS, compose))
        assert calls == expected
