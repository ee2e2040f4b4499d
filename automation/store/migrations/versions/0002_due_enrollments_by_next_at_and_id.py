"""due enrollments indexed by (next_at, id)

The tick pages through due enrollments with a (next_at, id) cursor: a campaign
makes a million enrollments due at the same instant, and only an index that
orders them by id as well lets each page start where the last one ended.
"""

from alembic import op

from automation.store.ddl import partial_index

revision = "0002"
down_revision = "0001"

ACTIVE = "state = 'active'"


def upgrade() -> None:
    op.drop_index("ix_enrollments_active_next_at", table_name="enrollments")
    partial_index("ix_enrollments_active_next_at", "enrollments", ["next_at", "id"], ACTIVE)


def downgrade() -> None:
    op.drop_index("ix_enrollments_active_next_at", table_name="enrollments")
    partial_index("ix_enrollments_active_next_at", "enrollments", ["next_at"], ACTIVE)
