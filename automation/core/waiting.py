"""What a `wait_for` step decides, from event timestamps alone. Pure.

The match key is the canonical text of the trigger event's values of the
step's `match` properties (`{"cart_id":"c1"}`; `{}` without `match`). An event
matches when it carries every one of those properties with the same values,
so another cart's order never counts, and an order without a cart never
counts for a cart. The decision looks only at when events occurred, never at
when they were ingested or when a tick ran.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from automation.core.walk import Choice

HAPPENED = "happened"
TIMED_OUT = "timed_out"


def match_key(names: Sequence[str], properties: dict[str, Any]) -> str:
    """The canonical text of `properties`' values of `names` (a missing one counts as null)."""
    return json.dumps({n: properties.get(n) for n in names}, sort_keys=True, separators=(",", ":"))


def awaited(event: str, key: str) -> str:
    """What a wait waits for, as people read it: "order_placed (cart_id c-1001)"."""
    wanted: dict[str, Any] = json.loads(key)
    same = ", ".join(f"{n} {v}" for n, v in wanted.items())
    return event + (f" ({same})" if same else "")


def matches(key: str, properties: dict[str, Any]) -> bool:
    """Whether an event's properties carry every property of a wait's match key, with its value."""
    wanted: dict[str, Any] = json.loads(key)
    return all(n in properties for n in wanted) and match_key(list(wanted), properties) == key


def decide(
    key: str,
    reached_at: dt.datetime,
    deadline: dt.datetime,
    now: dt.datetime,
    events: Iterable[tuple[dt.datetime, dict[str, Any]]],
) -> Choice:
    """Happened at the first matching event in [reached_at, deadline] (not after `now`), else timed out.

    `events` are the customer's events of the awaited name, (occurred_at, properties).
    Before the deadline with no such event yet, the enrollment stays parked.
    """
    last = min(deadline, now)
    hits = [at for at, props in events if reached_at <= at <= last and matches(key, props)]
    if hits:
        return Choice(HAPPENED, min(hits))
    if now >= deadline:
        return Choice(TIMED_OUT, deadline)
    return Choice(None, deadline)
