"""dash3: the conversion ledger (the deliveries a goal event followed) and the queue of customers to fold

Revision ID: dash3conversions
Revises: tick3marks
"""

import sqlalchemy as sa
from alembic import op

from automation.store import conversions, ddl
from automation.store.ddl import ident, instant, ref, string

revision = "dash3conversions"
down_revision = "tick3marks"
branch_labels = None
depends_on = None

INDEXES = (["journey_id", "due_at"], ["journey_id", "step_id", "arm"], ["customer_id"])


def upgrade() -> None:
    ddl.table(
        "conversions",
        ref("delivery_id"),
        string("journey_id", 128),
        string("step_id", 64),
        string("arm", 64, null=True),
        ref("enrollment_id"),
        string("customer_id", 128),
        instant("due_at"),
        sa.Column("converted", sa.Boolean(), nullable=False),
        sa.Column("anchored", sa.Boolean(), nullable=False),
        sa.Column("revenue", sa.Float(), nullable=True),
        key=("delivery_id",),
    )
    ddl.indexes("conversions", *INDEXES)
    ddl.table(
        "conversion_goals",
        string("journey_id", 128),
        string("event", 128),
        sa.Column("within_s", sa.BigInteger(), nullable=False),
        key=("journey_id",),
    )
    ddl.table("conversion_queue", ident(), string("customer_id", 128))
    # No goal is known here: the first fold computes every journey's rows (none has a goal row yet).
    for sql in conversions.create(op.get_bind().dialect.name):
        op.execute(sql)


def downgrade() -> None:
    for sql in conversions.drop(op.get_bind().dialect.name):
        op.execute(sql)
    op.drop_table("conversion_queue")
    op.drop_table("conversion_goals")
    ddl.drop_indexes("conversions", *INDEXES)
    op.drop_table("conversions")
