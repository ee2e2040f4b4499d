"""`/healthz`: can this deployment do its work right now?

Three checks: the database answers, Redis answers (when configured), and the
scheduler ticked lately. The last tick's instant is the row the scheduler
writes after every pass (`automation.store.heartbeats`); it is stale once older
than `STALE_TICKS` tick intervals, which means no scheduler is running, or its
ticks keep failing. Any failed check makes the answer 503.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from automation.store.heartbeats import last_tick

STALE_TICKS = 3


def tick_state(last: dt.datetime | None, now: dt.datetime, interval: dt.timedelta) -> str:
    """`ok`, `stale` (older than STALE_TICKS intervals) or `never` for the last tick's instant."""
    if last is None:
        return "never"
    return "stale" if now - last > STALE_TICKS * interval else "ok"


@dataclass(frozen=True)
class Health:
    database: str
    redis: str
    tick: str
    last_tick: dt.datetime | None
    now: dt.datetime

    @property
    def ok(self) -> bool:
        return self.database == "ok" and self.redis in ("ok", "not configured") and self.tick == "ok"

    def as_json(self) -> dict[str, Any]:
        age = (self.now - self.last_tick).total_seconds() if self.last_tick else None
        return {
            "status": "ok" if self.ok else "unavailable",
            "database": self.database,
            "redis": self.redis,
            "tick": self.tick,
            "last_tick_at": self.last_tick.isoformat().replace("+00:00", "Z") if self.last_tick else None,
            "last_tick_age_s": round(age, 3) if age is not None else None,
        }


def check(
    sessions: sessionmaker[Session], client: redis.Redis | None, now: dt.datetime, interval: dt.timedelta
) -> Health:
    """Run the three checks (blocking I/O: call it from a worker thread)."""
    try:
        with sessions() as s:
            s.execute(text("SELECT 1"))
            last = last_tick(s)
        database, tick = "ok", tick_state(last, now, interval)
    except SQLAlchemyError:
        database, tick, last = "unavailable", "unknown", None
    return Health(database, _redis_state(client), tick, last, now)


def _redis_state(client: redis.Redis | None) -> str:
    if client is None:
        return "not configured"
    try:
        client.ping()
    except RedisError:
        return "unavailable"
    return "ok"
