"""Event retention: the scheduler's daily pass deletes events older than the configured days.

Nothing journeys or reports need is lost with them: ingest already keeps the
order facts (order count, lifetime value, last order) on the customer row and
each event name's first and last time and count in `customer_event_stats`,
so inactivity, anniversaries and audience filters read the same afterwards;
event triggers only ever look back a few days. Deletes go in chunks, so the
pass never holds a long lock over the events table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session, sessionmaker

from automation.store.models import AnonymousEvent, Event

CHUNK = 10_000


@dataclass
class Removed:
    events: int = 0
    anonymous_events: int = 0

    def summary(self) -> str:
        return f"deleted {self.events} events and {self.anonymous_events} anonymous events past retention"


def _chunked(
    sessions: sessionmaker[Session], table: type[Event] | type[AnonymousEvent], before: dt.datetime
) -> int:
    total = 0
    while True:
        with sessions.begin() as s:
            ids = select(table.id).where(table.occurred_at < before).limit(CHUNK).scalar_subquery()
            n = cast(CursorResult[Any], s.execute(delete(table).where(table.id.in_(ids)))).rowcount
        total += n
        if n < CHUNK:
            return total


def apply(sessions: sessionmaker[Session], now: dt.datetime, days: int) -> Removed:
    """Delete every event (known or anonymous) that happened more than `days` days before `now`."""
    before = now - dt.timedelta(days=days)
    return Removed(_chunked(sessions, Event, before), _chunked(sessions, AnonymousEvent, before))
