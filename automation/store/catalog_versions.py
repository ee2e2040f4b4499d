"""The journey catalog versions the scheduler recorded: which one is the newest."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from automation.store.models import CatalogVersion


def newest(session: Session) -> str | None:
    """The version of the catalog the scheduler recorded last, None before the first tick."""
    return session.scalar(select(CatalogVersion.version).order_by(CatalogVersion.id.desc()).limit(1))


def record(session: Session, version: str, journeys: Sequence[str], now: dt.datetime) -> bool:
    """Record `version` as the newest unless it already is; True when it was recorded."""
    if newest(session) == version:
        return False
    session.execute(
        insert(CatalogVersion).values(version=version, journeys=sorted(journeys), recorded_at=now)
    )
    return True


def reader(sessions: sessionmaker[Session]) -> Callable[[], str | None]:
    """A function that reads the newest recorded version in its own short transaction."""

    def read() -> str | None:
        with sessions() as s:
            return newest(s)

    return read
