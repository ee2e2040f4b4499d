"""Pure send-time rules, judged at a delivery's due instant: quiet hours and caps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from automation.planner import next_local_time


def in_quiet_hours(at: dt.datetime, start: dt.time, end: dt.time, tz: ZoneInfo) -> bool:
    """Whether the local time at `at` lies in [start, end) (which may wrap midnight)."""
    local = at.astimezone(tz).time().replace(second=0, microsecond=0)
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_hours_release(at: dt.datetime, start: dt.time, end: dt.time, tz: ZoneInfo) -> dt.datetime | None:
    """The next allowed local minute when `at` is inside quiet hours, else None."""
    if not in_quiet_hours(at, start, end, tz):
        return None
    return next_local_time(at, end, tz)


@dataclass(frozen=True)
class CapRule:
    """At most `limit` messages per `window` on one channel for one customer."""

    limit: int
    window: dt.timedelta


def cap_release(
    due_at: dt.datetime, recent: Sequence[dt.datetime], rules: Sequence[CapRule]
) -> dt.datetime | None:
    """When a capped message may go, or None when no cap is reached.

    `recent` holds the due instants of the customer's counted messages on the
    channel. A window that is full frees up when its oldest counted message
    leaves it, so the release is that instant plus the window.
    """
    release: dt.datetime | None = None
    for rule in rules:
        in_window = sorted(t for t in recent if due_at - rule.window < t <= due_at)
        if len(in_window) >= rule.limit:
            frees = in_window[len(in_window) - rule.limit] + rule.window
            release = frees if release is None else max(release, frees)
    return release
