"""loyalty: the points ledger (accounts, lots, append-only transactions) and programme tiers

Revision ID: loyalty
Revises: insight
"""

import sqlalchemy as sa
from alembic import op

revision = "loyalty"
down_revision = "experiments"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "loyalty_accounts",
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("debt", sa.Integer(), nullable=False),
        _ts("clock", True),
        sa.Column("tier", sa.String(64), nullable=True),
        _ts("tier_since", True),
        _ts("tier_review_at", True),
        _ts("next_at", True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_loyalty_accounts")),
    )
    op.create_index(op.f("ix_loyalty_accounts_next_at"), "loyalty_accounts", ["next_at"])
    op.create_table(
        "loyalty_lots",
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("key", sa.String(240), nullable=False),
        sa.Column("event", sa.String(128), nullable=False),
        sa.Column("order_id", sa.String(200), nullable=True),
        _ts("earned_at"),
        _ts("activates_at"),
        _ts("expires_at", True),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in ("points", "remaining", "spent", "expired", "reversed", "cancelled")
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        sa.Column("refunded_amount", sa.Numeric(14, 2), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "key", name=op.f("pk_loyalty_lots")),
    )
    op.create_table(
        "loyalty_transactions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("key", sa.String(260), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        _ts("at"),
        sa.Column("lot", sa.String(240), nullable=True),
        sa.Column("detail", sa.String(200), nullable=False),
        _ts("recorded_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_transactions")),
        sa.UniqueConstraint("customer_id", "key", name=op.f("uq_loyalty_transactions_customer_id_key")),
    )


def downgrade() -> None:
    op.drop_table("loyalty_transactions")
    op.drop_table("loyalty_lots")
    op.drop_index(op.f("ix_loyalty_accounts_next_at"), table_name="loyalty_accounts")
    op.drop_table("loyalty_accounts")
