"""dash2: running counts of deliveries and provider events, kept by triggers, for the dashboard;
the enrollments that converted, by journey

Revision ID: dash21
Revises: waitfor
"""

import sqlalchemy as sa
from alembic import op

from automation.store import ddl, tallies
from automation.store.ddl import ident, string

revision = "dash21"
down_revision = "waitfor"
branch_labels = None
depends_on = None

COUNT = sa.BigInteger()


def upgrade() -> None:
    ddl.table(
        "delivery_tallies",
        ident(),
        string("journey_id", 128),
        string("step_id", 64),
        string("channel", 8),
        string("status", 16),
        string("arm", 64, null=True),
        string("day", 10),
        *(sa.Column(name, COUNT, nullable=False) for name in tallies.DELIVERIES.count_names),
    )
    ddl.table(
        "provider_event_tallies",
        ident(),
        string("day", 10),
        string("provider", 16),
        string("event_type", 32),
        sa.Column("n", COUNT, nullable=False),
    )
    ddl.partial_index(
        "ix_enrollments_journey_id_converted_at",
        "enrollments",
        ["journey_id", "converted_at"],
        "converted_at IS NOT NULL",
    )
    dialect = op.get_bind().dialect.name
    for sql in (*tallies.create(dialect), *tallies.fill(dialect)):
        op.execute(sql)


def downgrade() -> None:
    for sql in tallies.drop(op.get_bind().dialect.name):
        op.execute(sql)
    op.drop_index("ix_enrollments_journey_id_converted_at", table_name="enrollments")
    op.drop_table("provider_event_tallies")
    op.drop_table("delivery_tallies")
