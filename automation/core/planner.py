"""Pure time and trigger arithmetic: zones, local times, anniversaries, tier changes.

Nothing here reads the clock or touches the database: every function takes
`now` and plain values, so each rule is tested with a table of fixed times.
The trigger kinds (`automation.enroll`) and step kinds (`automation.advance`)
are built on these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from automation.core.entry import within_lookback
from automation.core.journeys import AnniversaryTrigger, TierChangeTrigger


@lru_cache(maxsize=1024)
def zone(name: str | None, default: str) -> ZoneInfo:
    """The customer's zone, or the default when unset or unknown.

    Cached: ZoneInfo's own cache keeps only a few zones strongly, so with customers
    in thirty zones every call would read the zone file again.
    """
    for candidate in (name, default, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def next_local_time(after: dt.datetime, at: dt.time, tz: ZoneInfo) -> dt.datetime:
    """The first instant at or after `after` whose local time in `tz` is `at`."""
    local = after.astimezone(tz)
    for days in range(3):
        day = local.date() + dt.timedelta(days=days)
        candidate = dt.datetime.combine(day, at, tzinfo=tz).astimezone(dt.UTC)
        if candidate >= after:
            return candidate
    raise AssertionError("unreachable: a local time recurs within three days")


# ---------------------------------------------------------------- triggers


def anniversary_on(date: dt.date, year: int) -> dt.date:
    """The date's anniversary in `year`; Feb 29 falls on Feb 28 in common years."""
    try:
        return date.replace(year=year)
    except ValueError:
        return dt.date(year, 2, 28)


@dataclass(frozen=True)
class Occurrence:
    key: str
    occurred_at: dt.datetime
    context: dict[str, Any]


def last_anniversary(origin: dt.date, at: dt.time, tz: ZoneInfo, now: dt.datetime) -> Occurrence | None:
    """The latest yearly moment of `origin` (local `at` in `tz`) at or before `now`, whatever its age."""
    local_year = now.astimezone(tz).year
    for year in (local_year, local_year - 1):
        if year < origin.year:
            return None
        day = anniversary_on(origin, year)
        moment = dt.datetime.combine(day, at, tzinfo=tz).astimezone(dt.UTC)
        if moment <= now:
            return Occurrence(
                key=str(year),
                occurred_at=moment,
                context={"years": year - origin.year, "anniversary": day.isoformat()},
            )
    return None


def next_anniversary(origin: dt.date, at: dt.time, tz: ZoneInfo, now: dt.datetime) -> Occurrence:
    """The first yearly moment of `origin` strictly after `now` (for previews and explanations)."""
    year = max(now.astimezone(tz).year, origin.year)
    while True:
        day = anniversary_on(origin, year)
        moment = dt.datetime.combine(day, at, tzinfo=tz).astimezone(dt.UTC)
        if moment > now:
            return Occurrence(
                key=str(year),
                occurred_at=moment,
                context={"years": year - origin.year, "anniversary": day.isoformat()},
            )
        year += 1


def anniversary_due(
    trigger: AnniversaryTrigger, origin: dt.date, tz: ZoneInfo, now: dt.datetime
) -> Occurrence | None:
    """The anniversary moment of `origin` that is due at `now`, within the look-back."""
    occ = last_anniversary(origin, trigger.at, tz, now)
    if occ is None or not within_lookback(occ.occurred_at, now, trigger.lookback):
        return None
    if occ.context["years"] < trigger.first_year():
        return None
    return occ


def anniversary_days(
    at: dt.time, tz: ZoneInfo, now: dt.datetime, lookback: dt.timedelta, shift: int = 0
) -> frozenset[int]:
    """Month*100+day of the dates whose anniversary moment in `tz` falls in the look-back at `now`.

    What the indexed lookup reads for the customers of one zone, so an idle tick
    reads about a day of them rather than five days of everyone. `shift` moves
    each date by that many days (a timestamp's UTC date may be the local one's
    neighbour); Feb 29 joins whenever Feb 28 or Mar 1 does.
    """
    out: set[int] = set()
    day = (now - lookback).astimezone(tz).date() - dt.timedelta(days=1)
    while day <= now.astimezone(tz).date() + dt.timedelta(days=1):
        moment = dt.datetime.combine(day, at, tzinfo=tz).astimezone(dt.UTC)
        if within_lookback(moment, now, lookback):
            near = day + dt.timedelta(days=shift)
            out.add(near.month * 100 + near.day)
        day += dt.timedelta(days=1)
    if 228 in out or 301 in out:
        out.add(229)
    return frozenset(out)


@lru_cache(maxsize=1024)
def offset_bounds(tz: ZoneInfo) -> tuple[dt.timedelta, dt.timedelta]:
    """The least and greatest UTC offset `tz` has had since 1900, each widened by an hour.

    Read at every January and July, which every daylight-saving rule spans; the
    hour covers any shorter-lived offset in between. A timestamp's local date in
    `tz` is its UTC date unless its UTC time of day is within these of midnight.
    """
    offsets = [
        dt.datetime(year, month, 1, 12, tzinfo=dt.UTC).astimezone(tz).utcoffset() or dt.timedelta()
        for year in range(1900, 2101)
        for month in (1, 7)
    ]
    hour = dt.timedelta(hours=1)
    return min(offsets) - hour, max(offsets) + hour


def anniversary_years(now: dt.datetime, lookback: dt.timedelta) -> set[int]:
    """The years an anniversary found by `anniversary_days` can fall in (two around New Year)."""
    return {(now - lookback - dt.timedelta(hours=14 + 24)).year, (now + dt.timedelta(hours=14 + 24)).year}


def tier_change_matches(
    trigger: TierChangeTrigger, old: str | None, new: str | None, order: Iterable[str]
) -> bool:
    """Whether a change from `old` to `new` enters, given the declared tier order."""
    if new is None or old == new:
        return False
    if trigger.to is not None and new not in trigger.to:
        return False
    if trigger.direction == "any":
        return True
    rank = {t: n for n, t in enumerate(order)}
    if new not in rank or (old is not None and old not in rank):
        return False
    old_rank = rank[old] if old is not None else -1
    return (rank[new] > old_rank) if trigger.direction == "up" else (rank[new] < old_rank)
