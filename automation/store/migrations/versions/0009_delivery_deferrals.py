"""delivery_deferrals: each deferral of a delivery (when judged, until when, why)

The delivery row is rewritten when a deferred message is released and sent;
this table keeps the deferral for the customer's "why" timeline.
"""

import sqlalchemy as sa
from alembic import op

from automation.store.ddl import ident, indexes, instant, ref, table

revision = "delivery_deferrals"
down_revision = "sqlite_unescaped_traits"


def upgrade() -> None:
    table(
        "delivery_deferrals",
        ident(),
        ref("delivery_id"),
        instant("judged_at"),
        instant("until"),
        sa.Column("reason", sa.Text(), nullable=True),
    )
    indexes("delivery_deferrals", ["delivery_id"])


def downgrade() -> None:
    op.drop_table("delivery_deferrals")
