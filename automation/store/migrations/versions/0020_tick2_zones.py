"""tick2zones: customers' month-day indexes carry the time zone, and the zones have an index of their own

The anniversary lookup reads, per zone, only the days due there (`enroll.anniversary`);
the zones themselves are found by a skip scan of `ix_customers_timezone` (`store.zones`).

Revision ID: tick2zones
Revises: waitfor
"""

from automation.store import ddl

revision = "tick2zones"
down_revision = "waitfor"
branch_labels = None
depends_on = None

OLD = (["birthday_md"], ["signed_up_md"])
NEW = (["birthday_md", "timezone"], ["signed_up_md", "timezone"], ["timezone"])


def upgrade() -> None:
    ddl.indexes("customers", *NEW)
    ddl.drop_indexes("customers", *OLD)


def downgrade() -> None:
    ddl.indexes("customers", *OLD)
    ddl.drop_indexes("customers", *NEW)
