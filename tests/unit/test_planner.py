"""The pure planner: anniversaries across time zones and DST, waits, tier changes, step migration."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from automation.advance import plan
from automation.core import entry, planner
from automation.core.journeys import AnniversaryTrigger, Journey, TierChangeTrigger


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


BIRTHDAY_9 = AnniversaryTrigger(trait="birthday", at="09:00")  # type: ignore[arg-type]
SIGNUP_10 = AnniversaryTrigger(trait="signed_up_at", at="10:00")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("trigger", "origin", "zone", "now", "due_at", "years"),
    [
        # UTC-10: 09:00 in Honolulu is 19:00 UTC the same day.
        (BIRTHDAY_9, "1990-06-15", "Pacific/Honolulu", "2026-06-15T18:59", None, None),
        (BIRTHDAY_9, "1990-06-15", "Pacific/Honolulu", "2026-06-15T19:00", "2026-06-15T19:00", 36),
        # UTC+14: 09:00 in Kiritimati is 19:00 UTC the day before.
        (BIRTHDAY_9, "1990-06-15", "Pacific/Kiritimati", "2026-06-14T18:59", None, None),
        (BIRTHDAY_9, "1990-06-15", "Pacific/Kiritimati", "2026-06-14T19:00", "2026-06-14T19:00", 36),
        # Feb 29 falls on Feb 28 in common years, on Feb 29 in leap years.
        (BIRTHDAY_9, "2000-02-29", "UTC", "2027-02-28T09:00", "2027-02-28T09:00", 27),
        (BIRTHDAY_9, "2000-02-29", "UTC", "2027-03-01T08:59", "2027-02-28T09:00", 27),
        (BIRTHDAY_9, "2000-02-29", "UTC", "2028-02-28T12:00", None, None),
        (BIRTHDAY_9, "2000-02-29", "UTC", "2028-02-29T09:00", "2028-02-29T09:00", 28),
        # DST: Europe springs forward on 2026-03-29 and falls back on 2026-10-25.
        (BIRTHDAY_9, "1985-03-29", "Europe/Paris", "2026-03-29T06:59", None, None),
        (BIRTHDAY_9, "1985-03-29", "Europe/Paris", "2026-03-29T07:00", "2026-03-29T07:00", 41),
        (BIRTHDAY_9, "1985-10-25", "Europe/Paris", "2026-10-25T07:59", None, None),
        (BIRTHDAY_9, "1985-10-25", "Europe/Paris", "2026-10-25T08:00", "2026-10-25T08:00", 41),
        # DST: the US springs forward on 2026-03-08 and falls back on 2026-11-01.
        (BIRTHDAY_9, "1992-03-08", "America/New_York", "2026-03-08T12:59", None, None),
        (BIRTHDAY_9, "1992-03-08", "America/New_York", "2026-03-08T13:00", "2026-03-08T13:00", 34),
        (BIRTHDAY_9, "1992-11-01", "America/New_York", "2026-11-01T13:59", None, None),
        (BIRTHDAY_9, "1992-11-01", "America/New_York", "2026-11-01T14:00", "2026-11-01T14:00", 34),
        # The look-back (1 day by default): a moment missed by more is skipped.
        (BIRTHDAY_9, "1990-06-15", "UTC", "2026-06-16T09:00", "2026-06-15T09:00", 36),
        (BIRTHDAY_9, "1990-06-15", "UTC", "2026-06-16T09:01", None, None),
        # A birthday counts from year 0 (a baby's first day); an anniversary from year 1.
        (BIRTHDAY_9, "2026-06-15", "UTC", "2026-06-15T09:00", "2026-06-15T09:00", 0),
        (SIGNUP_10, "2026-06-15", "UTC", "2026-06-15T10:00", None, None),
        (SIGNUP_10, "2025-06-15", "UTC", "2026-06-15T10:00", "2026-06-15T10:00", 1),
        # New Year's Eve across the date line: the previous local year is considered.
        (SIGNUP_10, "2020-12-31", "Pacific/Honolulu", "2027-01-01T08:00", "2026-12-31T20:00", 6),
    ],
)
def test_anniversary_due(
    trigger: AnniversaryTrigger,
    origin: str,
    zone: str,
    now: str,
    due_at: str | None,
    years: int | None,
) -> None:
    occ = planner.anniversary_due(trigger, dt.date.fromisoformat(origin), ZoneInfo(zone), utc(now))
    if due_at is None:
        assert occ is None
    else:
        assert occ is not None
        assert occ.occurred_at == utc(due_at)
        assert occ.context["years"] == years


def test_min_years_can_be_set() -> None:
    fifth = AnniversaryTrigger(trait="signed_up_at", min_years=5)
    assert (
        planner.anniversary_due(fifth, dt.date(2022, 1, 10), ZoneInfo("UTC"), utc("2026-01-10T09:00")) is None
    )
    assert planner.anniversary_due(fifth, dt.date(2021, 1, 10), ZoneInfo("UTC"), utc("2026-01-10T09:00"))


def test_anniversary_days_are_those_due_in_the_zone_within_the_look_back() -> None:
    day = dt.timedelta(days=1)
    # 12:00 UTC: 09:00 has passed in Paris today (Nov 22) and yesterday is within the look-back
    # only before 08:00 UTC; in Tokyo 09:00 of Nov 22 was at 00:00 UTC, of Nov 23 is still to come.
    at = dt.time(9)
    now = utc("2026-11-22T12:00")
    assert planner.anniversary_days(at, ZoneInfo("Europe/Paris"), now, day) == {1122}
    assert planner.anniversary_days(at, ZoneInfo("Asia/Tokyo"), now, day) == {1122}
    assert planner.anniversary_days(at, ZoneInfo("America/Los_Angeles"), now, day) == {1121}
    assert planner.anniversary_days(at, ZoneInfo("UTC"), utc("2026-11-22T09:00"), day) == {1121, 1122}
    assert planner.anniversary_days(at, ZoneInfo("UTC"), now, day, shift=-1) == {1121}


def test_offset_bounds_span_the_zone_history_and_an_hour() -> None:
    hour = dt.timedelta(hours=1)
    assert planner.offset_bounds(ZoneInfo("UTC")) == (-hour, hour)
    least, greatest = planner.offset_bounds(ZoneInfo("Asia/Tokyo"))
    assert least <= 8 * hour and greatest >= 10 * hour
    least, greatest = planner.offset_bounds(ZoneInfo("America/New_York"))
    assert least <= -6 * hour and greatest >= -3 * hour


def test_anniversary_days_bring_feb_29_with_feb_28_and_mar_1() -> None:
    day = dt.timedelta(days=1)
    assert planner.anniversary_days(dt.time(9), ZoneInfo("UTC"), utc("2027-02-28T12:00"), day) == {228, 229}
    assert planner.anniversary_days(dt.time(9), ZoneInfo("UTC"), utc("2027-03-01T12:00"), day) == {301, 229}


def test_anniversary_days_cover_every_due_moment() -> None:
    """Whatever the zone, date, hour and look-back, a due anniversary's day is among the days read."""
    trigger = AnniversaryTrigger(trait="birthday", lookback=dt.timedelta(hours=30))
    for zone_name in ("Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/London", "Australia/Lord_Howe"):
        tz = ZoneInfo(zone_name)
        for hour in range(0, 24 * 4, 5):
            now = utc("2027-02-26T00:00") + dt.timedelta(hours=hour)
            days = planner.anniversary_days(trigger.at, tz, now, trigger.lookback)
            for origin in (
                dt.date(2000, 2, 29),
                dt.date(1999, 2, 27),
                dt.date(1999, 2, 28),
                dt.date(1999, 3, 1),
            ):
                due = planner.anniversary_due(trigger, origin, tz, now) is not None
                assert not due or origin.month * 100 + origin.day in days, (zone_name, now, origin)


def test_next_anniversary_for_previews() -> None:
    nxt = planner.next_anniversary(
        dt.date(2000, 2, 29), dt.time(9), ZoneInfo("Europe/Paris"), utc("2026-03-01T00:00")
    )
    assert nxt.occurred_at == utc("2027-02-28T08:00") and nxt.context["years"] == 27


def journey(*steps: dict) -> Journey:
    return Journey.model_validate(
        {"id": "j", "name": "J", "trigger": {"event": {"name": "order_placed"}}, "steps": list(steps)}
    )


SEND_A = {"send": {"id": "a", "channel": "email", "template": "t"}}
SEND_B = {"send": {"id": "b", "channel": "email", "template": "t"}}
T0 = utc("2026-03-28T20:00")


@pytest.mark.parametrize(
    ("wait", "now", "next_at"),
    [
        ({"duration": "90m"}, "2026-03-28T21:29", "2026-03-28T21:30"),
        ({"duration": "2h"}, "2026-03-28T21:00", "2026-03-28T22:00"),
        ({"duration": "7d"}, "2026-03-29T00:00", "2026-04-04T20:00"),
        ({"duration": "1d12h"}, "2026-03-29T00:00", "2026-03-30T08:00"),
        ({"minutes": 45}, "2026-03-28T20:10", "2026-03-28T20:45"),
        ({"hours": 3}, "2026-03-28T20:10", "2026-03-28T23:00"),
        ({"days": 2}, "2026-03-28T20:10", "2026-03-30T20:00"),
        # Until 09:00 Paris time across the spring-forward night: 07:00 UTC (CEST).
        ({"until": "09:00"}, "2026-03-28T20:10", "2026-03-29T07:00"),
    ],
)
def test_a_wait_holds_the_next_send_until_it_ends(wait: dict, now: str, next_at: str) -> None:
    j = journey(SEND_A, {"wait": wait}, SEND_B)
    paris = ZoneInfo("Europe/Paris")
    first = plan.advance(j, "a", T0, utc(now), paris)
    assert [s.step_id for s in first.sends] == ["a"]
    assert first.next_step_id == "b" and first.next_at == utc(next_at)
    # At the end of the wait the next send is due, at that instant.
    second = plan.advance(j, "b", utc(next_at), utc(next_at), paris)
    assert [(s.step_id, s.due_at) for s in second.sends] == [("b", utc(next_at))]
    assert second.completed


def test_waits_count_from_the_schedule_so_a_late_tick_sends_at_once() -> None:
    j = journey(SEND_A, {"wait": {"hours": 2}}, SEND_B, {"wait": {"days": 1}})
    late = utc("2026-03-30T00:00")
    result = plan.advance(j, "a", T0, late, ZoneInfo("UTC"))
    assert [(s.step_id, s.due_at) for s in result.sends] == [("a", late), ("b", late)]
    assert result.completed


def test_a_step_id_that_disappeared_completes_without_sending() -> None:
    edited = journey({"send": {"id": "renamed", "channel": "email", "template": "t"}})
    result = plan.advance(edited, "b", T0, T0, ZoneInfo("UTC"))
    assert result.sends == [] and result.completed


def test_default_step_ids_are_positions() -> None:
    j = journey({"wait": {"hours": 1}}, {"send": {"channel": "email", "template": "t"}})
    assert j.step_ids() == ["step-1", "step-2"]


ORDER = ("bronze", "silver", "gold", "platinum")


@pytest.mark.parametrize(
    ("trigger", "old", "new", "enters"),
    [
        ({"direction": "up"}, "bronze", "gold", True),
        ({"direction": "up"}, "gold", "silver", False),
        ({"direction": "down"}, "gold", "silver", True),
        ({"direction": "down"}, "silver", "gold", False),
        ({"direction": "any"}, "gold", "silver", True),
        ({"to": ["gold"]}, "silver", "gold", True),
        ({"to": ["gold"]}, "silver", "platinum", False),
        ({"to": ["gold", "platinum"], "direction": "up"}, "platinum", "gold", False),
        ({"direction": "up"}, "gold", "gold", False),
        ({"direction": "up"}, "gold", "diamond", False),
    ],
)
def test_tier_change_matches(trigger: dict, old: str, new: str, enters: bool) -> None:
    assert planner.tier_change_matches(TierChangeTrigger(**trigger), old, new, ORDER) is enters


def test_a_declared_tier_order_is_used() -> None:
    up = TierChangeTrigger(direction="up")
    assert planner.tier_change_matches(up, "gold", "bronze", ("gold", "bronze"))
    assert not planner.tier_change_matches(up, "gold", "bronze", ORDER)


def test_occurrence_key_per_policy() -> None:
    base = {"id": "j", "name": "J", "trigger": {"event": {"name": "x"}}, "steps": [SEND_A]}
    assert entry.occurrence_key(Journey.model_validate(base), "o-1") == "o-1"
    assert entry.occurrence_key(Journey.model_validate({**base, "re_entry": "once"}), "o-1") == "once"
