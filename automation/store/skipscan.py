"""The distinct values of an indexed column by a skip scan: one index descent per value.

`SELECT DISTINCT` reads every row; a recursive "the next value above this one"
reads the index once per distinct value, so a column with a few dozen values
(customers' zones, the journeys of enrollments) costs the same at a million rows
as at a thousand. PostgreSQL and SQLite both run it. NULL is not listed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session


def distinct(session: Session, column: ColumnElement[Any]) -> list[Any]:
    """Every distinct non-NULL value of `column` (the leading column of an index), in order."""
    values = select(func.min(column).label("value")).cte("skip", recursive=True)
    following = select(select(func.min(column)).where(column > values.c.value).scalar_subquery())
    values = values.union_all(following.where(values.c.value.is_not(None)))
    return [v for v in session.scalars(select(values.c.value)) if v is not None]
