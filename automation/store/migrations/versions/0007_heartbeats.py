"""heartbeats: the instant of the last scheduler tick

The web process's /healthz and every process's metrics read it, so it lives
where all of them can: one row per recurring process, created here so that
recording a beat is a plain UPDATE.
"""

import sqlalchemy as sa
from alembic import op

revision = "heartbeats"
down_revision = "dashboard"


def upgrade() -> None:
    heartbeats = op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_heartbeats")),
    )
    op.bulk_insert(heartbeats, [{"name": "tick", "at": None}])


def downgrade() -> None:
    op.drop_table("heartbeats")
