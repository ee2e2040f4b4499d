"""A UTC calendar day as a SQL expression, on PostgreSQL and SQLite."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Session


def day(s: Session, col: Any) -> Any:
    """`YYYY-MM-DD` of a timestamp column, in UTC."""
    if s.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d", col)
    return func.to_char(func.timezone("UTC", col), "YYYY-MM-DD")
