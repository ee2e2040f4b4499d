"""Filters compiled to SQL expressions over `customers`.

An audience of a million is filtered inside the database. Builds SQL, runs none.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    String,
    and_,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement as Col
from sqlalchemy.sql.functions import FunctionElement

from automation.core.filters import COLUMN_TRAITS, FACTS, Filter
from automation.store.models import Customer

#: The column behind each column trait and each order fact.
COLUMNS: dict[str, Any] = {name: getattr(Customer, name) for name in (*COLUMN_TRAITS, *FACTS)}


class json_typed(FunctionElement[Any]):
    """`traits[key]` as a number or boolean, NULL when the stored value is of another type.

    A plain cast would make the whole query fail on one customer whose trait
    holds, say, a word where a number was expected; this reads such a value as
    absent instead, on PostgreSQL and SQLite alike.
    """

    inherit_cache = True
    name = "json_typed"

    def __init__(self, key: str, kind: str) -> None:
        self.kind = kind
        self.type = Boolean() if kind == "boolean" else Float()
        super().__init__(Customer.traits, literal(key, String()), literal_column(f"'{kind}'"))


@compiles(json_typed, "postgresql")
def _json_typed_pg(element: json_typed, compiler: Any, **kw: Any) -> str:
    col, key, _ = (compiler.process(c, **kw) for c in element.clauses)
    cast = "boolean" if element.kind == "boolean" else "double precision"
    return f"CASE WHEN jsonb_typeof({col} -> {key}) = '{element.kind}' THEN ({col} ->> {key})::{cast} END"


@compiles(json_typed, "sqlite")
def _json_typed_sqlite(element: json_typed, compiler: Any, **kw: Any) -> str:
    col, key, _ = (compiler.process(c, **kw) for c in element.clauses)
    path = f"'$.\"' || {key} || '\"'"
    if element.kind == "boolean":
        return f"CASE json_type({col}, {path}) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END"
    return f"CASE WHEN json_type({col}, {path}) IN ('integer', 'real') THEN json_extract({col}, {path}) END"


def _json_field(name: str, sample: Any) -> Any:
    if isinstance(sample, bool):
        return json_typed(name, "boolean")
    if isinstance(sample, int | float):
        return json_typed(name, "number")
    return Customer.traits[name].as_string()


def _operand(f: Filter) -> Any:
    for op in ("eq", "ne", "gt", "gte", "lt", "lte"):
        if op in f.model_fields_set:
            return getattr(f, op)
    if f.in_:
        return f.in_[0]
    return ""


def _column(f: Filter) -> Any:
    name = f.subject()
    if name in COLUMNS:
        return COLUMNS[name]
    return _json_field(name, _operand(f))


TIMESTAMPS = ("signed_up_at", "last_order_at")


def _value(f: Filter, value: Any) -> Any:
    """The operand in the subject's type.

    Dates compare with custom (JSON) traits as ISO 8601 text, which sorts like
    time; timestamp columns take an aware instant (a date is midnight UTC).
    """
    custom = f.trait is not None and f.trait not in COLUMN_TRAITS
    if custom and isinstance(value, dt.date):
        return value.isoformat()
    if f.subject() in TIMESTAMPS and isinstance(value, str | dt.date):
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time(0))
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if f.subject() == "birthday" and isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    return value


def compile_filter(f: Filter | None) -> ColumnElement[bool]:
    """Build the SQL condition over `customers` for a filter (None = everyone)."""
    if f is None:
        return true()
    given = f.model_fields_set
    if "all" in given:
        return and_(true(), *(compile_filter(x) for x in f.all or []))
    if "any" in given:
        return or_(false(), *(compile_filter(x) for x in f.any or []))
    if "not_" in given:
        return not_(compile_filter(f.not_))
    col = _column(f)
    parts: list[Col[bool]] = []
    if "exists" in given:
        if f.trait and f.trait not in COLUMN_TRAITS:
            present = Customer.traits[f.trait].as_string().is_not(None)
            parts.append(present if f.exists else not_(present))
        else:
            parts.append(col.is_not(None) if f.exists else col.is_(None))
    if "eq" in given:
        parts.append(col.is_(None) if f.eq is None else col == _value(f, f.eq))
    if "ne" in given:
        parts.append(col.is_not(None) if f.ne is None else or_(col != _value(f, f.ne), col.is_(None)))
    if "in_" in given:
        parts.append(col.in_([_value(f, v) for v in f.in_ or []]))
    for op, fn in (
        ("gt", col.__gt__),
        ("gte", col.__ge__),
        ("lt", col.__lt__),
        ("lte", col.__le__),
    ):
        if op in given:
            parts.append(fn(_value(f, getattr(f, op))))
    # A missing trait makes SQL's comparison unknown (NULL); a condition on it is
    # false, so that `not` of it is true, as a marketer reads it.
    return func.coalesce(and_(*parts), false())
