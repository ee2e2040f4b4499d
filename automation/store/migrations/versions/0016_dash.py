"""dash: a daily snapshot of the KPIs (the overview's trends), and campaigns enrolled by the worker

Revision ID: dash
Revises: coupons
"""

import sqlalchemy as sa
from alembic import op

from automation.store import ddl
from automation.store.ddl import instant

revision = "dash"
down_revision = "coupons"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("confirmed_audience", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("enrolled_through", sa.String(128), nullable=True))
    ddl.table(
        "kpi_snapshots",
        sa.Column("day", sa.Date(), nullable=False),
        instant("taken_at"),
        ddl.json("figures"),
        key=("day",),
    )


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("enrolled_through")
        batch.drop_column("confirmed_audience")
    op.drop_table("kpi_snapshots")
