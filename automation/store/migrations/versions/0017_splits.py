"""splits: the path each enrollment took at each `split` step; room in customer pages for the insight refresh

`insight refresh` rewrites every customer row once a day. On PostgreSQL a row
version that fits on its own page and changes no indexed column is a HOT update:
no entry in any of the table's indexes. A fill factor of 50 leaves that room
(the size the daily rewrite grows the table to anyway); pages written before
this keep their fill until rewritten.

Revision ID: splits
Revises: dash
"""

import sqlalchemy as sa
from alembic import op

from automation.store import ddl
from automation.store.ddl import instant, ref, string

revision = "splits"
down_revision = "dash"
branch_labels = None
depends_on = None

CUSTOMERS_FILLFACTOR = 50


def upgrade() -> None:
    ddl.table(
        "split_decisions",
        ref("enrollment_id"),
        string("step_id", 64),
        string("journey_id", 128),
        string("path_id", 64),
        instant("decided_at"),
        sa.ForeignKeyConstraint(
            ["enrollment_id"], ["enrollments.id"], name=op.f("fk_split_decisions_enrollment_id_enrollments")
        ),
        key=("enrollment_id", "step_id"),
    )
    ddl.indexes("split_decisions", ["journey_id", "step_id", "path_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE customers SET (fillfactor = {CUSTOMERS_FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE customers RESET (fillfactor)")
    ddl.drop_indexes("split_decisions", ["journey_id", "step_id", "path_id"])
    op.drop_table("split_decisions")
