"""topics: each customer's newest choice per subscription topic, and the undo of leaving

Revision ID: topics
Revises: claim_lease
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "topics"
down_revision = "claim_lease"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "topic_choices",
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.Column("chosen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("how", sa.String(16), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", "topic", name=op.f("pk_topic_choices")),
    )
    op.create_table(
        "preference_undos",
        sa.Column("delivery_id", BIG_ID, nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("previous", JSON, nullable=False),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_preference_undos")),
    )
    op.create_index(op.f("ix_preference_undos_customer_id"), "preference_undos", ["customer_id"])


def downgrade() -> None:
    op.drop_table("preference_undos")
    op.drop_table("topic_choices")
