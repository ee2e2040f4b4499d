"""due enrollments indexed by (next_at, id)

The tick pages through due enrollments with a (next_at, id) cursor: a campaign
makes a million enrollments due at the same instant, and only an index that
orders them by id as well lets each page start where the last one ended.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ACTIVE = sa.text("state = 'active'")


def upgrade() -> None:
    op.drop_index("ix_enrollments_active_next_at", table_name="enrollments")
    op.create_index(
        "ix_enrollments_active_next_at",
        "enrollments",
        ["next_at", "id"],
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("ix_enrollments_active_next_at", table_name="enrollments")
    op.create_index(
        "ix_enrollments_active_next_at",
        "enrollments",
        ["next_at"],
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
