"""experiments: the arm of each delivery (a variant, the holdout, the global control group)

Revision ID: experiments
Revises: topics
"""

import sqlalchemy as sa
from alembic import op

revision = "experiments"
down_revision = "insight"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("arm", sa.String(64), nullable=True))
    op.create_index(
        op.f("ix_deliveries_journey_id_step_id_arm"), "deliveries", ["journey_id", "step_id", "arm"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_deliveries_journey_id_step_id_arm"), table_name="deliveries")
    op.drop_column("deliveries", "arm")
