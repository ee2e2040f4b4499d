"""topics: each customer's newest choice per subscription topic, and the undo of leaving"""

import sqlalchemy as sa
from alembic import op

from automation.store.ddl import indexes, instant, json, ref, string, table

revision = "topics"
down_revision = "claim_lease"


def upgrade() -> None:
    table(
        "topic_choices",
        string("customer_id", 128),
        string("topic", 64),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        instant("chosen_at"),
        string("how", 16),
        instant("confirmed_at", null=True),
        key=("customer_id", "topic"),
    )
    table(
        "preference_undos",
        ref("delivery_id"),
        string("customer_id", 128),
        instant("left_at"),
        json("previous"),
        key=("delivery_id",),
    )
    indexes("preference_undos", ["customer_id"])


def downgrade() -> None:
    op.drop_table("preference_undos")
    op.drop_table("topic_choices")
