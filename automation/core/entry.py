"""The rules of entry, written once: look-back window, occurrence key, re-entry policy, cool-down.

Every path that lets a customer into a journey (the tick on SQLite and on
PostgreSQL, campaigns, `journeys explain`) uses these functions, or the SQL
forms `automation.enroll.policy` builds from them, so they cannot disagree at a
boundary. Pure: plain values and `now` in, decisions out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import TypeVar

from automation.core.journeys import Cooldown, Journey

T = TypeVar("T")

#: The occurrence key of every enrollment of a `re_entry: once` journey: one per customer, ever.
ONCE_KEY = "once"


def lookback_start(now: dt.datetime, lookback: dt.timedelta) -> dt.datetime:
    """The oldest instant an occasion may have and still enter at `now` (the boundary enters)."""
    return now - lookback


def within_lookback(occurred_at: dt.datetime, now: dt.datetime, lookback: dt.timedelta) -> bool:
    """Whether an occasion at `occurred_at` may still enter at `now`: at most `lookback` old, not future."""
    return lookback_start(now, lookback) <= occurred_at <= now


def fixed_key(journey: Journey) -> str | None:
    """The one occurrence key the policy imposes (`once`), or None when each occurrence keeps its own."""
    return ONCE_KEY if journey.re_entry == "once" else None


def occurrence_key(journey: Journey, raw_key: str) -> str:
    """The enrollment's unique key under the journey's re-entry policy."""
    return fixed_key(journey) or raw_key


def cooldown(journey: Journey) -> dt.timedelta | None:
    """The journey's cool-down, when its policy has one."""
    return journey.re_entry.cooldown if isinstance(journey.re_entry, Cooldown) else None


def cooling_since(now: dt.datetime, span: dt.timedelta) -> dt.datetime:
    """An enrollment entered after this instant keeps its customer out at `now`."""
    return now - span


def in_cooldown(last_entered_at: dt.datetime | None, now: dt.datetime, span: dt.timedelta) -> bool:
    """Whether a customer who last entered at `last_entered_at` is still cooling down at `now`."""
    return last_entered_at is not None and last_entered_at > cooling_since(now, span)


def keeps_latest(journey: Journey) -> bool | None:
    """Which of a customer's due occurrences the policy keeps: the latest (True), the first, or all (None)."""
    if cooldown(journey) is not None:
        return True
    return False if journey.re_entry == "once" else None


def choose(
    journey: Journey, due: Iterable[T], customer: Callable[[T], str], at: Callable[[T], dt.datetime]
) -> list[T]:
    """The due occurrences the policy lets in: all of them, or one per customer (first or latest)."""
    items = list(due)
    latest = keeps_latest(journey)
    if latest is None:
        return items
    picked: dict[str, T] = {}
    for item in sorted(items, key=at, reverse=latest):
        picked.setdefault(customer(item), item)
    return list(picked.values())
