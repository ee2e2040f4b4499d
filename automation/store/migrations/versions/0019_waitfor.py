"""waitfor: enrollments parked at a wait_for step, and the events watermark of the early wake

Revision ID: waitfor
Revises: loyal
"""

import sqlalchemy as sa
from alembic import op

from automation.store import ddl
from automation.store.ddl import instant, ref, string

revision = "waitfor"
down_revision = "loyal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ddl.table("watermarks", string("name", 32), ref("last_id"), key=("name",))
    ddl.table(
        "enrollment_waits",
        ref("enrollment_id"),
        string("journey_id", 128),
        string("step_id", 64),
        string("customer_id", 128),
        string("event", 128),
        sa.Column("match_key", sa.Text(), nullable=False),
        instant("reached_at"),
        instant("deadline"),
        key=("enrollment_id",),
    )
    ddl.indexes("enrollment_waits", ["journey_id"], ["customer_id", "event"])


def downgrade() -> None:
    op.drop_table("watermarks")
    ddl.drop_indexes("enrollment_waits", ["journey_id"], ["customer_id", "event"])
    op.drop_table("enrollment_waits")
