"""The instant of the last scheduler tick, kept where every process can read it.

The scheduler (and `automation tick` run on the wall clock) records it after
each pass; the web process's /healthz judges the scheduler alive by it, and the
metrics export it. A beat never moves the instant back.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from automation.store.models import Heartbeat

TICK = "tick"


def record_tick(s: Session, at: dt.datetime) -> None:
    s.execute(
        update(Heartbeat)
        .where(Heartbeat.name == TICK, or_(Heartbeat.at.is_(None), Heartbeat.at < at))
        .values(at=at)
    )


def last_tick(s: Session) -> dt.datetime | None:
    """When the last tick finished, or None if none ever has."""
    return s.scalar(select(Heartbeat.at).where(Heartbeat.name == TICK))
