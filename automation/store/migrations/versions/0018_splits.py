"""splits: the path each enrollment took at each `split` step

Revision ID: splits
Revises: coupons
"""

import sqlalchemy as sa
from alembic import op

from automation.store import ddl
from automation.store.ddl import instant, ref, string

revision = "splits"
down_revision = "coupons"
branch_labels = None
depends_on = None


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


def downgrade() -> None:
    ddl.drop_indexes("split_decisions", ["journey_id", "step_id", "path_id"])
    op.drop_table("split_decisions")
