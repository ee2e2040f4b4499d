"""Priority and staleness in the one judge: table-driven, fixed instants."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from automation.core import judging
from automation.core.journeys import Journey
from automation.core.statuses import Channel, DeliveryStatus, EnrollmentState

T = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
CAPS = judging.caps(Channel.EMAIL, 1, 3, 1)


def journey(**extra: object) -> Journey:
    return Journey.model_validate(
        {
            "id": "j",
            "name": "j",
            "trigger": "manual",
            "quiet_hours": False,
            "steps": [{"send": {"channel": "email", "template": "t"}}],
            **extra,
        }
    )


def facts(**extra: object) -> judging.Facts:
    base = judging.Facts(
        enrollment_state=EnrollmentState.ACTIVE,
        email="a@example.com",
        phone=None,
        email_opt_in=True,
        sms_opt_in=False,
        suppressed=None,
        timezone=ZoneInfo("UTC"),
        first_due_at=T,
    )
    return replace(base, **extra)  # type: ignore[arg-type]


def verdict(j: Journey, f: judging.Facts, at: dt.datetime = T) -> judging.Verdict[str]:
    step = j.send_steps()[0][1]
    sendable: judging.Composition[str] = judging.Composed("the message", segments=None)
    return judging.judge(judging.Case(Channel.EMAIL, at, j, step, f, CAPS, lambda: sendable))


@pytest.mark.parametrize(
    ("j", "f", "at", "status", "reason"),
    [
        (journey(), facts(), T, DeliveryStatus.SENDING, None),
        (
            journey(),
            facts(queued_at=T + 25 * H),
            T,
            DeliveryStatus.SKIPPED,
            "stale: not sent within 1d of falling due",
        ),
        (journey(), facts(first_due_at=T - 24 * H), T, DeliveryStatus.SENDING, None),
        (journey(send_within=False), facts(queued_at=T + 72 * H), T, DeliveryStatus.SENDING, None),
        (
            journey(send_within="2h"),
            facts(),
            T + 3 * H,
            DeliveryStatus.SKIPPED,
            "stale: not sent within 2h of falling due",
        ),
        # A cap deferral by a day stays within 24h; a second day's would not.
        (journey(), facts(counted=[T - H]), T, DeliveryStatus.DEFERRED, "frequency cap"),
        (
            journey(),
            facts(counted=[T - H], first_due_at=T - 2 * H),
            T,
            DeliveryStatus.SKIPPED,
            "stale: not sent within 1d of falling due (frequency cap)",
        ),
        (
            journey(send_within=False),
            facts(counted=[T - H], occasion_day=T.date()),
            T,
            DeliveryStatus.SKIPPED,
            "stale: past the local day of the occasion (2026-11-22) (frequency cap)",
        ),
        # The occasion's day is the customer's: 15:30 UTC is already the next day in Tokyo.
        (
            journey(),
            facts(occasion_day=T.date(), timezone=ZoneInfo("Asia/Tokyo")),
            dt.datetime(2026, 11, 22, 15, 30, tzinfo=dt.UTC),
            DeliveryStatus.SKIPPED,
            "stale: past the local day of the occasion (2026-11-22)",
        ),
        # A pending message that outranks this one takes the slot.
        (journey(send_within=False), facts(ahead=[T + H]), T, DeliveryStatus.DEFERRED, "frequency cap"),
    ],
)
def test_stale_and_contested_slots(
    j: Journey, f: judging.Facts, at: dt.datetime, status: DeliveryStatus, reason: str | None
) -> None:
    v = verdict(j, f, at)
    assert (v.status, v.reason) == (status, reason)


@pytest.mark.parametrize(
    ("mine", "other", "first"),
    [
        ((0, T, 1), (10, T + H, 2), True),  # higher priority goes first, even due later
        ((10, T, 1), (0, T - H, 2), False),
        ((0, T, 5), (0, T - H, 9), True),  # equal priority: the earlier due
        ((0, T, 5), (0, T, 4), True),  # then the older row
        ((0, T, 5), (0, T, 6), False),
    ],
)
def test_outranks(
    mine: tuple[int, dt.datetime, int], other: tuple[int, dt.datetime, int], first: bool
) -> None:
    assert judging.outranks(*mine, other) is first
