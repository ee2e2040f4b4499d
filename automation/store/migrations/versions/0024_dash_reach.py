"""dash_reach: how many enrollments reached each stage of the funnel, and how many entered, kept by triggers

Revision ID: dash_reach
Revises: dash3conversions
"""

import sqlalchemy as sa
from alembic import op

from automation.store import ddl, tallies
from automation.store.ddl import ident, ref, string

revision = "dash_reach"
down_revision = "dash3conversions"
branch_labels = None
depends_on = None

COUNT = sa.BigInteger()


def upgrade() -> None:
    ddl.table(
        "reach",
        string("journey_id", 128),
        ref("enrollment_id"),
        *(sa.Column(stage, COUNT, nullable=False, server_default="0") for stage in tallies.STAGES),
        key=("journey_id", "enrollment_id"),
    )
    ddl.table(
        "reach_changes",
        ident(),
        string("journey_id", 128),
        ref("enrollment_id"),
        *(sa.Column(stage, COUNT, nullable=False, server_default="0") for stage in tallies.STAGES),
    )
    ddl.table(
        "reach_tallies",
        ident(),
        string("journey_id", 128),
        *(sa.Column(name, COUNT, nullable=False) for name in tallies.FUNNEL.count_names),
    )
    ddl.table(
        "enrollment_tallies",
        ident(),
        string("journey_id", 128),
        string("state", 16),
        string("day", 10),
        sa.Column("n", COUNT, nullable=False),
    )
    dialect = op.get_bind().dialect.name
    # What the ledger holds lands in `reach_changes`: the first reader folds it into `reach`.
    filled = [t for t in tallies.REACH if t is not tallies.FUNNEL]
    for sql in (*tallies.create(dialect, tallies.REACH), *tallies.fill(dialect, filled)):
        op.execute(sql)


def downgrade() -> None:
    for sql in tallies.drop(op.get_bind().dialect.name, tallies.REACH):
        op.execute(sql)
    op.drop_table("enrollment_tallies")
    op.drop_table("reach_tallies")
    op.drop_table("reach_changes")
    op.drop_table("reach")
