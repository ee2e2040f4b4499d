"""the claim lease measured from claimed_at

The worker now stamps `claimed_at` when it claims a delivery, and the tick
resumes claims (and calls sends `unknown`) whose `claimed_at` is older than the
lease. Rows claimed before this revision get their enqueue instant, which is
what the lease was measured from until now.
"""

import sqlalchemy as sa
from alembic import op

revision = "claim_lease"
down_revision = "delivery_deferrals"


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE deliveries SET claimed_at = enqueued_at "
            "WHERE status IN ('claimed', 'sending') AND claimed_at IS NULL"
        )
    )
    op.create_index(op.f("ix_deliveries_status_claimed_at"), "deliveries", ["status", "claimed_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_deliveries_status_claimed_at"), table_name="deliveries")
