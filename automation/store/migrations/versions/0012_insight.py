"""insight: each customer's RFM scores and segment, and the predictions of `insight refresh`

Revision ID: insight
Revises: topics
"""

import sqlalchemy as sa
from alembic import op

revision = "insight"
down_revision = "topics"
branch_labels = None
depends_on = None

COLUMNS = (
    ("rfm_r", sa.SmallInteger()),
    ("rfm_f", sa.SmallInteger()),
    ("rfm_m", sa.SmallInteger()),
    ("rfm_segment", sa.String(32)),
    ("p_alive", sa.Float()),
    ("expected_orders_90d", sa.Float()),
    ("predicted_clv_365d", sa.Float()),
    ("clv_decile", sa.SmallInteger()),
    ("insight_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
