"""Dialect-neutral bulk writes: insert-or-ignore and upsert on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import FromClause
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def _insert(session: Session, table: FromClause) -> Any:
    name = session.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)  # type: ignore[arg-type]


def insert_ignore(
    session: Session,
    table: FromClause,
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
    returning: Sequence[str] = (),
) -> list[Any]:
    """Insert rows, skipping those that clash on `conflict`; returns the inserted `returning`."""
    if not rows:
        return []
    stmt = _insert(session, table).on_conflict_do_nothing(index_elements=list(conflict))
    if returning:
        stmt = stmt.returning(*(table.c[c] for c in returning))
        return list(session.execute(stmt, list(rows)).all())
    session.execute(stmt, list(rows))
    return []


def upsert(
    session: Session,
    table: FromClause,
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert rows, overwriting `update` columns on a clash of `conflict`."""
    if not rows:
        return
    stmt = _insert(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(conflict), set_={c: stmt.excluded[c] for c in update}
    )
    session.execute(stmt, list(rows))
