"""delivery_deferrals: each deferral of a delivery (when judged, until when, why)

The delivery row is rewritten when a deferred message is released and sent;
this table keeps the deferral for the customer's "why" timeline.

Revision ID: delivery_deferrals
Revises: sqlite_unescaped_traits
"""

import sqlalchemy as sa
from alembic import op

revision = "delivery_deferrals"
down_revision = "sqlite_unescaped_traits"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "delivery_deferrals",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("delivery_id", BIG_ID, nullable=False),
        sa.Column("judged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_deferrals")),
    )
    op.create_index(op.f("ix_delivery_deferrals_delivery_id"), "delivery_deferrals", ["delivery_id"])


def downgrade() -> None:
    op.drop_table("delivery_deferrals")
