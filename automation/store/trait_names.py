"""Which custom trait names customers carry, and how many carry each (the JSON `traits` column)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

_COUNTS = {
    "postgresql": text(
        "SELECT k, count(*) FROM customers, jsonb_object_keys(customers.traits) AS k "
        "WHERE jsonb_typeof(customers.traits) = 'object' GROUP BY k"
    ),
    "sqlite": text(
        "SELECT j.key, count(*) FROM customers, json_each(customers.traits) AS j "
        "WHERE json_type(customers.traits) = 'object' GROUP BY j.key"
    ),
}


def counts(session: Session) -> dict[str, int]:
    """Customers per custom trait name, read inside the database in one pass over `customers`."""
    stmt = _COUNTS[session.get_bind().dialect.name]
    return {str(name): int(n) for name, n in session.execute(stmt)}
