"""tick3marks: how far each event journey has read the events, and what it read but did not enroll

An event journey's tick reads only the events past its mark, plus the events it
read before and left out (audience, cool-down, not yet occurred), so an idle
tick reads what is new, not the whole look-back (`enroll.marks`).

Revision ID: tick3marks
Revises: tick2idle
"""

from alembic import op

from automation.store import ddl
from automation.store.ddl import instant, ref, string

revision = "tick3marks"
down_revision = "tick2idle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ddl.table(
        "entry_marks",
        string("journey_id", 128),
        string("rules", 64),
        ref("last_id"),
        instant("read_at"),
        key=("journey_id",),
    )
    ddl.table(
        "entry_pending",
        string("journey_id", 128),
        ref("event_id"),
        string("customer_id", 128),
        instant("occurred_at"),
        key=("journey_id", "event_id"),
    )


def downgrade() -> None:
    op.drop_table("entry_pending")
    op.drop_table("entry_marks")
