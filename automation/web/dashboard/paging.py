"""Keyset paging: a page ends with an opaque cursor naming its last row, the next page starts after it.

A cursor is `instant~key` (the key being the row id) (URL-safe, readable in a link); a malformed one is
ignored and the first page is shown, never an error page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

T = TypeVar("T")
PAGE_SIZE = 50


@dataclass(frozen=True)
class Cursor:
    at: dt.datetime
    key: str

    def encode(self) -> str:
        return f"{self.at.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%S.%fZ')}~{self.key}"

    @property
    def number(self) -> int:
        """The key as a row id (0 when it is not one)."""
        return int(self.key) if self.key.isdigit() and len(self.key) <= 18 else 0


def decode(text: str | None) -> Cursor | None:
    if not text or "~" not in text:
        return None
    when, _, ident = text.partition("~")
    try:
        at = dt.datetime.strptime(when, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=dt.UTC)
        return Cursor(at, ident)
    except ValueError:
        return None


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    next: str | None


def page_of(rows: list[T], size: int, key: Callable[[T], Cursor]) -> Page[T]:
    """The first `size` of `rows` (fetched as size + 1) and the cursor to the rest, if any."""
    shown = rows[:size]
    return Page(shown, key(shown[-1]).encode() if len(rows) > size else None)


def newest_first(
    s: Session,
    stmt: Select[Any],
    at: InstrumentedAttribute[dt.datetime],
    ident: InstrumentedAttribute[Any],
    after: str | None,
    size: int,
) -> Page[T]:
    """One page of `stmt`'s rows, newest `at` first (ties by `ident`), after the cursor `after`."""
    cursor = decode(after)
    if cursor is not None:
        last = cursor.number if ident.type.python_type is int else cursor.key
        stmt = stmt.where(or_(at < cursor.at, and_(at == cursor.at, ident < last)))
    rows: list[T] = list(s.scalars(stmt.order_by(at.desc(), ident.desc()).limit(size + 1)))
    return page_of(rows, size, lambda r: Cursor(getattr(r, at.key), str(getattr(r, ident.key))))
