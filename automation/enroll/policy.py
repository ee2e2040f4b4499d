"""The SQL forms of the rules of entry, built from `core.entry` and nowhere else.

The look-back window, the occurrence key, "not enrolled yet under this key",
the cool-down and the choice of one occurrence per customer, as SQLAlchemy
expressions that PostgreSQL and SQLite both run. The candidate path, the
set-based path, campaigns and `journeys explain` take them from here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, literal, select
from sqlalchemy.orm import Session

from automation.core import entry
from automation.core.journeys import Journey
from automation.store.models import Enrollment


def in_lookback(col: Any, now: dt.datetime, lookback: dt.timedelta) -> list[ColumnElement[bool]]:
    """`col` within the look-back at `now` (`entry.within_lookback`)."""
    return [since_lookback_start(col, now, lookback), col <= now]


def since_lookback_start(col: Any, now: dt.datetime, lookback: dt.timedelta) -> ColumnElement[bool]:
    """`col` not older than the look-back allows at `now`; it may still lie ahead of `now`."""
    return col >= entry.lookback_start(now, lookback)


def key(journey: Journey, raw: Any) -> Any:
    """The occurrence key column under the policy (`entry.occurrence_key`)."""
    fixed = entry.fixed_key(journey)
    return literal(fixed) if fixed is not None else raw


def not_enrolled(
    journey: Journey, customer_id: Any, occurrence_key: Any, *, per_row: bool = False
) -> ColumnElement[bool]:
    """No enrollment of the customer in the journey under this occurrence key.

    `per_row` looks each row up by index (a subquery the planner cannot turn into
    a join): for rows known to be few, whose journey's enrollments the statistics
    may undercount, where an anti-join compared each row with all of them (the
    anniversaries due on a day at 100,000 customers: 287 rows x 134 enrollments).
    """
    where = (
        Enrollment.journey_id == journey.id,
        Enrollment.customer_id == customer_id,
        Enrollment.occurrence_key == occurrence_key,
    )
    if per_row:
        return select(literal(1)).where(*where).limit(1).scalar_subquery().is_(None)
    return ~exists().where(*where)


def cooled_down(journey: Journey, customer_id: Any, now: dt.datetime) -> list[ColumnElement[bool]]:
    """The customer is out of the journey's cool-down at `now` (`entry.in_cooldown`); [] without one."""
    span = entry.cooldown(journey)
    if span is None:
        return []
    return [
        ~exists().where(
            Enrollment.journey_id == journey.id,
            Enrollment.customer_id == customer_id,
            Enrollment.entered_at > entry.cooling_since(now, span),
        )
    ]


def cooling(session: Session, journey: Journey, customer_ids: Iterable[str], now: dt.datetime) -> set[str]:
    """Of these customers, those still in the journey's cool-down at `now`."""
    span = entry.cooldown(journey)
    ids = set(customer_ids)
    if span is None or not ids:
        return set()
    return set(
        session.scalars(
            select(Enrollment.customer_id).where(
                Enrollment.journey_id == journey.id,
                Enrollment.customer_id.in_(ids),
                Enrollment.entered_at > entry.cooling_since(now, span),
            )
        )
    )


def under_policy(journey: Journey, due: Select[Any], now: dt.datetime) -> Select[Any]:
    """The due rows the policy lets in (`entry.choose`, then the cool-down), in SQL."""
    latest = entry.keeps_latest(journey)
    if latest is None:
        return due
    occurred_at = due.selected_columns.occurred_at
    rank = func.row_number().over(
        partition_by=due.selected_columns.customer_id,
        order_by=occurred_at.desc() if latest else occurred_at,
    )
    ranked = due.add_columns(rank.label("rank")).subquery("ranked")
    return select(
        ranked.c.customer_id, ranked.c.occurrence_key, ranked.c.occurred_at, ranked.c.context
    ).where(ranked.c.rank == 1, *cooled_down(journey, ranked.c.customer_id, now))
