"""Planner statistics kept up with bulk writes, so a table just filled is not planned as empty.

PostgreSQL plans from the row counts its last ANALYZE saw. A campaign or a spike
writes tens of thousands of rows in seconds, long before autovacuum looks again,
and a statement planned for an empty table then loops over the new rows once per
row (completing 20,000 enrollments took minutes instead of a tenth of a second).
A write that at least doubles what the planner believes is there refreshes the
statistics in the same transaction (ANALYZE counts the transaction's own rows), so
they are current when it commits: a doubling rule keeps it to a handful of ANALYZEs
however large the table grows.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

#: Writes smaller than this never refresh: any plan is quick over so few rows.
MIN_ROWS = 5000


def keep_up(session: Session, table: str, written: int) -> bool:
    """ANALYZE `table` (PostgreSQL) if the `written` rows at least double its planner estimate."""
    if written < MIN_ROWS or session.get_bind().dialect.name != "postgresql":
        return False
    believed = session.scalar(
        text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table}
    )
    if believed is not None and believed >= written:
        return False
    session.execute(text(f"ANALYZE {table}"))
    return True
