"""How long a provider asked us to wait, from its answer's headers."""

from __future__ import annotations

import datetime as dt
import math
import time
from email.utils import parsedate_to_datetime
from typing import Any


def _seconds(value: str) -> float | None:
    """Retry-After as delay-seconds or as an HTTP date (RFC 9110)."""
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        # A hint for real-time backoff, so the wall clock is the right one here.
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def retry_after_s(headers: Any) -> float | None:
    """Seconds to wait from Retry-After or X-RateLimit-Reset (epoch seconds), None when neither is usable."""
    if headers is None:
        return None
    value = headers.get("Retry-After")
    if value:
        return _seconds(str(value))
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            seconds = float(reset) - time.time()
        except ValueError:
            return None
        return max(0.0, seconds) if math.isfinite(seconds) else None
    return None
