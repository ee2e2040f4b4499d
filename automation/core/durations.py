"""Durations (`90m`, `2h`, `7d`, `1d12h`) and local times of day (`09:30`). Pure."""

from __future__ import annotations

import datetime as dt
import re

_PART = re.compile(r"(\d+)([smhdw])")
_WHOLE = re.compile(r"^(?:\d+[smhdw])+$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")

# The longest duration a journey may name: ten years. Longer ones are typing errors,
# and an instant that far ahead would overflow the calendar when a tick adds it.
MAX_DAYS = 3660
MAX_DURATION = dt.timedelta(days=MAX_DAYS)


def parse_duration(text: str) -> dt.timedelta:
    """`2h` -> 2 hours. Raises ValueError with the accepted forms."""
    cleaned = str(text).strip().replace(" ", "")
    if not _WHOLE.match(cleaned):
        raise ValueError(f"bad duration {text!r}: use a number and a unit s/m/h/d/w, like 90m, 2h, 7d")
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(cleaned))
    if seconds <= 0:
        raise ValueError(f"bad duration {text!r}: must be longer than zero")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"bad duration {text!r}: at most {MAX_DAYS}d (ten years)")
    return dt.timedelta(seconds=seconds)


def format_duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    out = []
    for unit in ("w", "d", "h", "m", "s"):
        n, seconds = divmod(seconds, _UNITS[unit])
        if n:
            out.append(f"{n}{unit}")
    return "".join(out) or "0s"


def parse_time_of_day(text: str) -> dt.time:
    """`09:30` -> time(9, 30). Raises ValueError."""
    match = _TIME.match(str(text).strip())
    if not match:
        raise ValueError(f"bad time of day {text!r}: use HH:MM, like 09:00 or 21:30")
    return dt.time(int(match.group(1)), int(match.group(2)))
