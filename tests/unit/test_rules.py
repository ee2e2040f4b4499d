"""Send-time rules at fixed instants: quiet hours, frequency caps, retry delays."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from automation.core import rules
from automation.core.rules import CapRule

NY = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")
DAY = dt.timedelta(hours=24)
WEEK = dt.timedelta(days=7)
EMAIL = (CapRule(1, DAY), CapRule(3, WEEK))


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("at", "tz", "expected"),
    [
        ("2026-11-22T12:00:00", NY, "2026-11-22T13:00:00"),  # 07:00 local in winter: quiet
        ("2026-11-22T13:00:00", NY, None),  # 08:00: allowed
        ("2026-11-22T01:59:00", NY, None),  # 20:59 the day before: still allowed
        ("2026-11-22T02:00:00", NY, "2026-11-22T13:00:00"),  # 21:00 sharp: quiet
        ("2026-11-22T12:59:59", NY, "2026-11-22T13:00:00"),  # 07:59:59: the next allowed minute
        ("2026-07-01T19:30:00", PARIS, "2026-07-02T06:00:00"),  # 21:30 CEST -> 08:00 CEST
        ("2026-03-29T05:00:00", PARIS, "2026-03-29T06:00:00"),  # 07:00 on the spring-forward day
    ],
)
def test_quiet_hours_defer_to_the_next_allowed_local_minute(
    at: str, tz: ZoneInfo, expected: str | None
) -> None:
    release = rules.quiet_hours_release(utc(at), dt.time(21), dt.time(8), tz)
    assert release == (utc(expected) if expected else None)


def test_quiet_hours_that_do_not_wrap_midnight() -> None:
    tz = ZoneInfo("UTC")
    assert rules.quiet_hours_release(utc("2026-11-22T12:30:00"), dt.time(12), dt.time(14), tz) == utc(
        "2026-11-22T14:00:00"
    )
    assert rules.quiet_hours_release(utc("2026-11-22T14:00:00"), dt.time(12), dt.time(14), tz) is None


@pytest.mark.parametrize(
    ("due", "counted", "expected"),
    [
        ("2026-11-22T12:00:00", [], None),
        # One a day: a message the day before, 24 h ago exactly, is out of the window.
        ("2026-11-22T12:00:00", ["2026-11-21T12:00:00"], None),
        ("2026-11-22T12:00:00", ["2026-11-21T13:00:00"], "2026-11-22T13:00:00"),
        # A message due LATER but already sent also blocks (it was judged first).
        ("2026-11-22T10:00:00", ["2026-11-22T11:00:00"], "2026-11-23T11:00:00"),
        # Three a week: days 1, 2, 3 sent, day 4 waits for day 1 to leave the week.
        (
            "2026-11-04T12:00:00",
            ["2026-11-01T12:00:00", "2026-11-02T12:00:00", "2026-11-03T12:00:00"],
            "2026-11-08T12:00:00",
        ),
        # Day 5 fits between days 1, 3 and 9: no 7-day window around it would hold 4.
        (
            "2026-11-05T12:00:00",
            ["2026-11-01T12:00:00", "2026-11-03T12:00:00", "2026-11-09T12:00:00"],
            None,
        ),
        # Between days 3, 4 and 9 it does not (3, 4, 5, 9 in one week) until day 10.
        (
            "2026-11-05T12:00:00",
            ["2026-11-03T12:00:00", "2026-11-04T12:00:00", "2026-11-09T12:00:00"],
            "2026-11-10T12:00:00",
        ),
    ],
)
def test_email_caps_count_due_instants_on_both_sides(
    due: str, counted: list[str], expected: str | None
) -> None:
    release = rules.cap_release(utc(due), [utc(t) for t in counted], EMAIL)
    assert release == (utc(expected) if expected else None)
    if release is not None:
        assert rules.cap_release(release, [utc(t) for t in counted], EMAIL) is None


def test_a_higher_daily_cap() -> None:
    caps = (CapRule(2, DAY),)
    one = [utc("2026-11-22T08:00:00")]
    assert rules.cap_release(utc("2026-11-22T12:00:00"), one, caps) is None
    two = [*one, utc("2026-11-22T09:00:00")]
    assert rules.cap_release(utc("2026-11-22T12:00:00"), two, caps) == utc("2026-11-23T08:00:00")


@pytest.mark.parametrize(
    ("attempt", "hint_s", "low", "high"),
    [
        (1, None, 1000, 2000),  # the first retry comes in seconds, not Dramatiq's 15 s
        (2, None, 2000, 4000),
        (4, None, 8000, 16000),
        (30, None, 150_000, 300_000),  # capped, with jitter kept
        (1, 7.0, 7000, 7000),  # Retry-After wins when longer
        (1, 0.0, 1000, 2000),
        (1, 99_999.0, 3_600_000, 3_600_000),  # an absurd hint is bounded to an hour
    ],
)
def test_retry_delay(attempt: int, hint_s: float | None, low: int, high: int) -> None:
    for jitter in (0.0, 0.5, 0.999):
        delay = rules.retry_delay_ms(attempt, hint_s, 1000, 300_000, jitter)
        assert low <= delay <= high
