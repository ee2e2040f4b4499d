"""A daily snapshot of the KPIs of `automation kpis`, taken by `insight refresh`: the overview's trends.

The figures are those of the CLI's default period (the year before the
refresh, active within `DEFAULT_WINDOW`); a second refresh on the same UTC day
replaces that day's row, so the history holds one point a day.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from automation.core import kpis as maths
from automation.core.durations import parse_duration
from automation.insight import kpis as counting
from automation.store.models import KpiSnapshot
from automation.store.sqlutil import insert_for


def figures(s: Session, order_event: str, until: dt.datetime) -> dict[str, Any]:
    """Every KPI of `automation kpis` with its default period and active window, ending at `until`."""
    since, window = until - counting.DEFAULT_PERIOD, parse_duration(counting.DEFAULT_WINDOW)
    return maths.kpis(counting.counts(s, order_event, since, until, window))


def take(s: Session, order_event: str, now: dt.datetime) -> dt.date:
    """Store today's (UTC) figures, replacing an earlier snapshot of the same day; returns the day."""
    day = now.astimezone(dt.UTC).date()
    stmt = insert_for(s, KpiSnapshot.__table__).values(
        day=day, taken_at=now, figures=figures(s, order_event, now)
    )
    s.execute(
        stmt.on_conflict_do_update(
            index_elements=["day"], set_={k: stmt.excluded[k] for k in ("taken_at", "figures")}
        )
    )
    return day


def recent(s: Session, since: dt.date) -> list[KpiSnapshot]:
    """The snapshots from `since` on, oldest first (by the primary key)."""
    return list(s.scalars(select(KpiSnapshot).where(KpiSnapshot.day >= since).order_by(KpiSnapshot.day)))
