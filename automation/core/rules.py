"""Pure send-time rules, judged at a delivery's due instant: quiet hours and caps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from automation.core.planner import next_local_time


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


def _fits(at: dt.datetime, counted: Sequence[dt.datetime], rule: CapRule) -> bool:
    """Whether one more message at `at` keeps every window of `rule` that holds it within the limit.

    The windows holding `at` end in [at, at + window); the busiest ends at `at`
    itself or at one of the counted instants after it.
    """
    ends = [at, *(t for t in counted if at <= t < at + rule.window)]
    return all(sum(1 for t in counted if end - rule.window < t <= end) < rule.limit for end in ends)


def cap_release(
    due_at: dt.datetime, counted: Sequence[dt.datetime], rules: Sequence[CapRule]
) -> dt.datetime | None:
    """When a capped message may go, or None when it fits under every rule now.

    `counted` holds the due instants of the customer's other counted messages
    on the channel, before and after `due_at` (a message judged later may be
    due earlier). A full window frees up when a counted message leaves it, so
    the release is the first such instant at which the message fits.
    """
    if all(_fits(due_at, counted, rule) for rule in rules):
        return None
    frees = sorted({t + rule.window for t in counted for rule in rules if t + rule.window > due_at})
    for at in frees:
        if all(_fits(at, counted, rule) for rule in rules):
            return at
    raise AssertionError("unreachable: past the last counted message every window is empty")


HINT_CEILING_MS = 3_600_000


def retry_delay_ms(attempt: int, hint_s: float | None, min_ms: int, max_ms: int, jitter: float) -> int:
    """How long to wait before retry number `attempt` (1 = the first retry).

    Exponential from `min_ms`, doubled each time and stretched by up to
    twice by `jitter` (0 <= jitter < 1), capped at `max_ms` while keeping
    half of the jitter. The provider's hint (Retry-After, a rate-limit reset)
    wins when it is longer, up to an hour.
    """
    base = min_ms * 2 ** min(max(attempt - 1, 0), 32)
    delay = int(base * (1 + jitter))
    if delay > max_ms:
        delay = int(max_ms * (1 + jitter) / 2)
    if hint_s is not None:
        delay = max(delay, min(int(hint_s * 1000), HINT_CEILING_MS))
    return delay
