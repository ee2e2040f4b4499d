"""loyal: the loyalty balances on each account (the `points`, `pending_points`, `expiring_points` facts), and
an index on the tier review instant (the `tier_will_downgrade` trigger)

Revision ID: loyal
Revises: splits
"""

import sqlalchemy as sa
from alembic import op

from automation.store import ddl

revision = "loyal"
down_revision = "splits"
branch_labels = None
depends_on = None

COLUMNS = ("points", "pending_points", "expiring_points")

_LEFT = "FROM loyalty_lots l WHERE l.customer_id = loyalty_accounts.customer_id AND l.remaining > 0"
#: The UTC day of a lot's expiry (SQLite keeps naive UTC text).
_DAY = {"postgresql": "((l.expires_at AT TIME ZONE 'UTC')::date)", "sqlite": "date(l.expires_at)"}


def upgrade() -> None:
    with op.batch_alter_table("loyalty_accounts") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
    ddl.indexes("loyalty_accounts", ["tier_review_at"])
    day = _DAY[op.get_bind().dialect.name]
    # Backfill as the next ledger write would (after the newest instant the ledger was brought to).
    soon = f"{_LEFT} AND l.active AND l.expires_at > loyalty_accounts.clock"
    op.execute(
        "UPDATE loyalty_accounts SET"
        f" points = COALESCE((SELECT SUM(l.remaining) {_LEFT} AND l.active), 0) - debt,"
        f" pending_points = COALESCE((SELECT SUM(l.remaining) {_LEFT} AND NOT l.active), 0),"
        f" expiring_points = COALESCE((SELECT SUM(l.remaining) {soon}"
        f" AND {day} = (SELECT MIN({day}) {soon})), 0)"
    )


def downgrade() -> None:
    ddl.drop_indexes("loyalty_accounts", ["tier_review_at"])
    with op.batch_alter_table("loyalty_accounts") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
