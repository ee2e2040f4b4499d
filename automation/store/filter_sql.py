"""Filters compiled to SQL expressions over `customers`.

An audience of a million is filtered inside the database. Builds SQL, runs none.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
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
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement as Col
from sqlalchemy.sql.functions import FunctionElement

from automation.core.filters import COLUMN_TRAITS, CUSTOMER_FACTS, LOYALTY_FACTS, Filter, kind_of
from automation.store import engagement
from automation.store.models import Customer, LoyaltyAccount


def _balance(name: str) -> Any:
    """A loyalty fact: the customer's account column, 0 without an account."""
    column = getattr(LoyaltyAccount, name)
    found = select(column).where(LoyaltyAccount.customer_id == Customer.id).scalar_subquery()
    return func.coalesce(found, 0)


#: The column behind each column trait and each order, insight or loyalty fact.
COLUMNS: dict[str, Any] = {
    **{name: getattr(Customer, name) for name in (*COLUMN_TRAITS, *CUSTOMER_FACTS)},
    **{name: _balance(name) for name in LOYALTY_FACTS},
}


class json_typed(FunctionElement[Any]):
    """`traits[key]` (or another JSON column's) as a number or boolean, NULL when of another type.

    A plain cast would make the whole query fail on one customer whose trait
    holds, say, a word where a number was expected; this reads such a value as
    absent instead, on PostgreSQL and SQLite alike.
    """

    inherit_cache = True
    name = "json_typed"

    def __init__(self, key: str, kind: str, column: Any = Customer.traits) -> None:
        self.kind = kind
        self.type = Boolean() if kind == "boolean" else Float()
        super().__init__(column, literal(key, String()), literal_column(f"'{kind}'"))


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


def _value(f: Filter, value: Any) -> Any:
    """The operand in the subject's type.

    Dates compare with custom (JSON) traits as ISO 8601 text, which sorts like
    time; timestamp columns take an aware instant (a date is midnight UTC).
    """
    kind = kind_of(f.subject(), f.fact is not None)
    if kind == "any" and isinstance(value, dt.date):
        return value.isoformat()
    if kind == "instant" and isinstance(value, str | dt.date):
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time(0))
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if kind == "date" and isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    return value


Condition = Callable[[Any, Filter, Any], Col[bool]]


def _exists(col: Any, f: Filter, wanted: Any) -> Col[bool]:
    if f.trait and f.trait not in COLUMN_TRAITS:
        col = Customer.traits[f.trait].as_string()
    return col.is_not(None) if wanted else col.is_(None)


def _eq(col: Any, f: Filter, value: Any) -> Col[bool]:
    return col.is_(None) if value is None else col == _value(f, value)


def _ne(col: Any, f: Filter, value: Any) -> Col[bool]:
    return col.is_not(None) if value is None else or_(col != _value(f, value), col.is_(None))


def _in(col: Any, f: Filter, values: Any) -> Col[bool]:
    return col.in_([_value(f, v) for v in values or []])


def _ordered(compare: Callable[[Any, Any], Col[bool]]) -> Condition:
    return lambda col, f, value: compare(col, _value(f, value))


#: The SQL of each operator of a condition.
CONDITIONS: dict[str, Condition] = {
    "exists": _exists,
    "eq": _eq,
    "ne": _ne,
    "in_": _in,
    "gt": _ordered(operator.gt),
    "gte": _ordered(operator.ge),
    "lt": _ordered(operator.lt),
    "lte": _ordered(operator.le),
}


def _condition(f: Filter) -> ColumnElement[bool]:
    col = _column(f)
    parts = [build(col, f, getattr(f, op)) for op, build in CONDITIONS.items() if op in f.model_fields_set]
    # A missing trait makes SQL's comparison unknown (NULL); a condition on it is
    # false, so that `not` of it is true, as a marketer reads it.
    return func.coalesce(and_(*parts), false())


Compile = Callable[[Filter], ColumnElement[bool]]

#: The SQL of each combinator, from its sub-filters and how to compile them.
COMBINATORS: dict[str, Callable[[Filter, Compile], ColumnElement[bool]]] = {
    "all": lambda f, sub: and_(true(), *(sub(x) for x in f.all or [])),
    "any": lambda f, sub: or_(false(), *(sub(x) for x in f.any or [])),
    "not_": lambda f, sub: not_(sub(f.not_) if f.not_ is not None else true()),
}


def compile_filter(
    f: Filter | None, enrollment: Any = None, as_of: dt.datetime | None = None
) -> ColumnElement[bool]:
    """Build the SQL condition over `customers` for a filter (None = everyone).

    Engagement conditions ask about the deliveries of `enrollment` (a column or a
    value) as they stood at `as_of` (None: as they stand). Without an enrollment
    nothing has been sent yet: `opened: false` holds and `opened: true` does not.
    """
    if f is None:
        return true()
    for name, combine in COMBINATORS.items():
        if name in f.model_fields_set:
            return combine(f, lambda sub: compile_filter(sub, enrollment, as_of))
    if f.engagement is not None:
        return engagement.condition(*f.engagement, enrollment, as_of)
    return _condition(f)


def compile_problem(f: Filter | None) -> str | None:
    """Why a filter cannot be turned into SQL for either database, or None when it can.

    Loading checks every filter this way, so that none fails first at tick or send time.
    """
    try:
        condition = compile_filter(f, literal(0))
        for dialect in (postgresql.dialect(), sqlite.dialect()):
            condition.compile(dialect=dialect)
    except (SQLAlchemyError, ValueError, TypeError) as exc:
        return (
            f"the filter cannot be compiled: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        )
    return None
