"""coupons: pools of unique codes, each assigned to at most one delivery and redeemed by an order

Revision ID: coupons
Revises: loyalty
"""

import sqlalchemy as sa
from alembic import op

from automation.store import ddl
from automation.store.ddl import ident, instant, ref, string

revision = "coupons"
down_revision = "loyalty"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ddl.table(
        "coupon_pools",
        string("name", 64),
        sa.Column("low_water", sa.Integer(), nullable=False),
        instant("created_at"),
        key=("name",),
    )
    ddl.table(
        "coupons",
        ident(),
        string("pool", 64),
        string("code", 64),
        instant("expires_at", null=True),
        ref("delivery_id", null=True),
        instant("assigned_at", null=True),
        instant("redeemed_at", null=True),
        string("redeemed_by", 200, null=True),
        instant("added_at"),
        ddl.unique("coupons", "pool", "code"),
        ddl.unique("coupons", "delivery_id"),
    )
    ddl.partial_index("ix_coupons_unassigned", "coupons", ["pool", "id"], "delivery_id IS NULL")
    ddl.indexes("coupons", ["code"])


def downgrade() -> None:
    ddl.drop_indexes("coupons", ["code"])
    op.drop_index("ix_coupons_unassigned", table_name="coupons")
    op.drop_table("coupons")
    op.drop_table("coupon_pools")
