"""tick2idle: indexes for an idle tick that reads what is due, not what is there

Customers' month-day indexes carry the time zone, and the zones have an index of
their own: the anniversary lookup reads, per zone, only the days due there
(`enroll.anniversary`), the zones found by a skip scan (`store.skipscan`).
The events' (name, occurred_at) index covers customer_id and event_key on
PostgreSQL, so the event trigger tells the enrolled events from the new ones
on the index alone (`enroll.event`). Three of the deliveries' indexes keep only
the rows that have what they index (claimed, of a campaign, with a provider id): a
new delivery of a journey has none, so the tick's INSERT writes ten indexes, not thirteen.

Revision ID: tick2idle
Revises: dash21
"""

from alembic import op

from automation.store import ddl

revision = "tick2idle"
down_revision = "dash21"
branch_labels = None
depends_on = None

OLD = (["birthday_md"], ["signed_up_md"])
NEW = (["birthday_md", "timezone"], ["signed_up_md", "timezone"], ["timezone"])
EVENTS = "ix_events_name_occurred_at"


def _events_index(include: list[str]) -> None:
    op.drop_index(EVENTS, table_name="events")
    op.create_index(EVENTS, "events", ["name", "occurred_at"], postgresql_include=include)


#: Each index and the column it keeps the rows of.
PRESENT = (
    (["status", "claimed_at"], "claimed_at"),
    (["campaign_id", "status"], "campaign_id"),
    (["provider_message_id"], "provider_message_id"),
)


def _deliveries(partial: bool) -> None:
    for columns, when in PRESENT:
        name = f"ix_deliveries_{'_'.join(columns)}"
        op.drop_index(name, table_name="deliveries")
        if partial:
            ddl.partial_index(name, "deliveries", columns, f"{when} IS NOT NULL")
        else:
            op.create_index(name, "deliveries", columns)


def upgrade() -> None:
    ddl.indexes("customers", *NEW)
    ddl.drop_indexes("customers", *OLD)
    _events_index(["customer_id", "event_key"])
    _deliveries(partial=True)


def downgrade() -> None:
    ddl.indexes("customers", *OLD)
    ddl.drop_indexes("customers", *NEW)
    _events_index([])
    _deliveries(partial=False)
