"""Dialect helpers: bulk insert-or-ignore and update on PostgreSQL and SQLite, timestamps as text.

`update_many` and `insert_ignore(..., one_statement=True)` put many rows in one
statement: an executemany of per-row UPDATEs, or an INSERT whose VALUES list
carries every row's parameters, makes the database parse and plan in proportion
to the rows; a handful of column arrays unnested in one statement does not. Elsewhere (SQLite, the embedded
default) they fall back to the row-by-row forms, which are fast enough there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Interval,
    String,
    Table,
    any_,
    bindparam,
    case,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session


def insert_for(session: Session, table: FromClause) -> Any:
    """The dialect's INSERT (with ON CONFLICT) for the session's database."""
    name = session.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)  # type: ignore[arg-type]


def _inserted(
    session: Session, stmt: Any, table: FromClause, returning: Sequence[str], rows: list[Any] | None = None
) -> list[Any]:
    """Run an INSERT; the `returning` columns of the rows it made, or [] when none are asked for."""
    if returning:
        return list(session.execute(stmt.returning(*(table.c[c] for c in returning)), rows).all())
    session.execute(stmt, rows)
    return []


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def unnested(table: FromClause, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Any:
    """`unnest(:col1, :col2, ...) AS u(col1, col2, ...)`, one typed array per column."""
    arrays = [
        bindparam(f"u_{c}", [r[c] for r in rows], type_=postgresql.ARRAY(table.c[c].type)) for c in columns
    ]
    return func.unnest(*arrays).table_valued(*columns).render_derived(name="u")


def insert_ignore(
    session: Session,
    table: FromClause,
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
    returning: Sequence[str] = (),
    *,
    one_statement: bool = False,
) -> list[Any]:
    """Insert rows, skipping those that clash on `conflict`; returns the inserted `returning`.

    With `one_statement`, PostgreSQL gets every row in one INSERT from unnested
    column arrays, whatever the number of rows.
    """
    if not rows:
        return []
    if one_statement and _is_postgresql(session):
        columns = list(rows[0])
        source = unnested(table, rows, columns)
        many = (
            postgresql.insert(cast(Table, table))
            .from_select(columns, select(*(source.c[c] for c in columns)))
            .on_conflict_do_nothing(index_elements=list(conflict))
        )
        return _inserted(session, many, table, returning)
    stmt = insert_for(session, table).on_conflict_do_nothing(index_elements=list(conflict))
    return _inserted(session, stmt, table, returning, list(rows))


def upsert_many(
    session: Session,
    table: FromClause,
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
    *,
    update: bool = True,
) -> None:
    """Insert rows; on `conflict` set the other columns of the row already there (`update`) or skip it.

    PostgreSQL COPYs the rows into a temporary table and inserts them from it in one
    statement: bound parameters, one per value, cost more than the write itself at
    thousands of rows. With `update` the rows must be unique on `conflict`.
    """
    if not rows:
        return
    columns, target = list(rows[0]), cast(Table, table)
    if not _is_postgresql(session):
        stmt = sqlite.insert(target)
        changes = {c: stmt.excluded[c] for c in columns if c not in conflict}
        if update:
            stmt = stmt.on_conflict_do_update(index_elements=list(conflict), set_=changes)
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict))
        session.execute(stmt, list(rows))
        return
    names, keys = ", ".join(f'"{c}"' for c in columns), ", ".join(f'"{c}"' for c in conflict)
    staged = f"copied_{target.name}"
    # `copied_n` keeps the rows' order: serial ids (an append-only log's) are given in it.
    session.execute(
        text(
            f"CREATE TEMP TABLE {staged} ON COMMIT DROP AS "
            f"SELECT {names}, 0 AS copied_n FROM {target.name} WITH NO DATA"
        )
    )
    values = itemgetter(*columns) if len(columns) > 1 else lambda r: (r[columns[0]],)
    copied = [(*values(r), n) for n, r in enumerate(rows)]
    copy_into(session, staged, [*columns, "copied_n"], copied)
    sets = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in conflict)
    action = f"DO UPDATE SET {sets}" if update else "DO NOTHING"
    session.execute(
        text(
            f"INSERT INTO {target.name} ({names}) SELECT {names} FROM {staged} ORDER BY copied_n "
            f"ON CONFLICT ({keys}) {action}"
        )
    )
    session.execute(text(f"DROP TABLE {staged}"))


def among(session: Session, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL `column = ANY(:array)`, one parameter however many values."""
    if _is_postgresql(session):
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return cast(ColumnElement[bool], column.in_(values))


def update_many(session: Session, table: FromClause, rows: Sequence[dict[str, Any]], key: str = "id") -> int:
    """Set each row's other columns where `key` equals its `key`; returns the rows updated."""
    if not rows:
        return 0
    columns = [c for c in rows[0] if c != key]
    if _is_postgresql(session):
        source = unnested(table, rows, [key, *columns])
        stmt: Any = (
            update(cast(Table, table))
            .where(table.c[key] == source.c[key])
            .values({c: source.c[c] for c in columns})
        )
        result = session.execute(stmt)
    else:
        stmt = (
            update(cast(Table, table))
            .where(table.c[key] == bindparam(f"b_{key}"))
            .values({c: bindparam(f"b_{c}") for c in columns})
        )
        result = session.execute(stmt, [{f"b_{k}": v for k, v in r.items()} for r in rows])
    assert isinstance(result, CursorResult)
    return int(result.rowcount or 0)


def copy_into(
    session: Session,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    types: Sequence[str] | None = None,
) -> None:
    """PostgreSQL: COPY rows into a (staging) table, in binary when `types` are given; none: no round trip."""
    if not rows:
        return
    raw = session.connection().connection.driver_connection
    assert raw is not None
    how = " (FORMAT BINARY)" if types else ""
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN{how}") as copy:
        if types:
            copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def iso_utc(instant: Any) -> ColumnElement[str]:
    """PostgreSQL: a timestamp as Python's `isoformat()` of an aware UTC datetime writes it.

    Occurrence keys and contexts hold such text; the candidate path, `explain` and
    enrollments made before must agree with what SQL writes, to the character.
    """
    utc = func.timezone("UTC", instant)
    fraction = case(
        (func.date_trunc("second", instant) == instant, literal("")),
        else_=func.to_char(utc, ".US", type_=String),
    )
    return func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS', type_=String) + fraction + literal("+00:00")


def utc_day(dialect: str, col: Any) -> Any:
    """`YYYY-MM-DD` of a timestamp column, in UTC, on PostgreSQL and SQLite."""
    if dialect == "sqlite":
        return func.strftime("%Y-%m-%d", col)
    return func.to_char(func.timezone("UTC", col), "YYYY-MM-DD")


def utc_time_of_day(session: Session, instant: Any) -> ColumnElement[str]:
    """A timestamp's UTC time of day as "HH:MM:SS" text, on PostgreSQL and SQLite alike (naive UTC text)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", instant), "HH24:MI:SS", type_=String)
    return func.substr(instant, 12, 8)


def plus(session: Session, col: Any, delta: dt.timedelta) -> Any:
    """`col + delta` in SQL on PostgreSQL and SQLite."""
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d %H:%M:%f", col, f"+{int(delta.total_seconds())} seconds")
    return col + literal(delta, Interval())
