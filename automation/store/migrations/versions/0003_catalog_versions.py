"""catalog versions and the first due instant of a delivery

The scheduler records each journey catalog it runs, so that a worker can tell a
journey that was removed from one its own folder does not have yet. A delivery
keeps the instant its step first fell due, which deferrals never move, for
`send_within`.

Revision ID: catalog_versions
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "catalog_versions"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_versions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("journeys", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("first_due_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("first_due_at")
    op.drop_table("catalog_versions")
