"""initial schema"""

import sqlalchemy as sa
from alembic import op

from automation.store.ddl import ident, indexes, instant, json, partial_index, ref, string, table, unique

revision = "0001"
down_revision = None

TABLES = (
    "deliveries",
    "suppressions",
    "provider_events",
    "events",
    "enrollments",
    "customers",
    "customer_event_stats",
    "campaigns",
)


def upgrade() -> None:
    table(
        "campaigns",
        string("id", 128),
        string("journey_id", 128),
        string("launched_by", 128),
        instant("launched_at"),
        json("filter", null=True),
        sa.Column("audience_size", sa.Integer(), nullable=False),
        string("status", 16),
        instant("cancelled_at", null=True),
    )
    table(
        "customer_event_stats",
        string("customer_id", 128),
        string("name", 128),
        instant("first_at"),
        instant("last_at"),
        sa.Column("count", sa.Integer(), nullable=False),
        key=("customer_id", "name"),
    )
    indexes("customer_event_stats", ["name", "last_at"])
    table(
        "customers",
        string("id", 128),
        string("email", 320, null=True),
        string("phone", 32, null=True),
        string("timezone", 64, null=True),
        string("first_name", 128, null=True),
        string("last_name", 128, null=True),
        string("tier", 32, null=True),
        instant("signed_up_at", null=True),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column("email_opt_in", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("sms_opt_in", sa.Boolean(), server_default="0", nullable=False),
        json("traits"),
        json("trait_times"),
        instant("last_order_at", null=True),
        sa.Column("order_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lifetime_value", sa.Numeric(precision=14, scale=2), server_default="0", nullable=False),
        sa.Column("signed_up_md", sa.SmallInteger(), nullable=True),
        sa.Column("birthday_md", sa.SmallInteger(), nullable=True),
        instant("created_at"),
        instant("updated_at"),
    )
    indexes("customers", ["birthday_md"], ["email"], ["last_order_at"], ["phone"], ["signed_up_md"], ["tier"])
    table(
        "enrollments",
        ident(),
        string("journey_id", 128),
        string("customer_id", 128),
        string("occurrence_key", 200),
        instant("occurred_at"),
        instant("entered_at"),
        string("state", 16),
        string("next_step_id", 64, null=True),
        instant("next_at", null=True),
        json("context"),
        string("campaign_id", 128, null=True),
        instant("exited_at", null=True),
        string("exit_reason", 64, null=True),
        instant("converted_at", null=True),
        unique("enrollments", "journey_id", "customer_id", "occurrence_key"),
    )
    partial_index("ix_enrollments_active_next_at", "enrollments", ["next_at"], "state = 'active'")
    indexes(
        "enrollments", ["campaign_id"], ["customer_id", "journey_id", "entered_at"], ["journey_id", "state"]
    )
    table(
        "events",
        ident(),
        string("event_key", 200),
        string("customer_id", 128),
        string("name", 128),
        instant("occurred_at"),
        json("properties"),
        instant("received_at"),
        unique("events", "event_key"),
    )
    indexes("events", ["customer_id", "name", "occurred_at"], ["name", "occurred_at"])
    table(
        "provider_events",
        ident(),
        string("provider", 16),
        string("event_key", 200),
        ref("delivery_id", null=True),
        string("event_type", 32),
        instant("occurred_at"),
        json("payload"),
        instant("received_at"),
        unique("provider_events", "event_key"),
    )
    indexes("provider_events", ["delivery_id"])
    table(
        "suppressions",
        ident(),
        string("channel", 8),
        string("address", 320),
        string("reason", 64),
        string("source", 32),
        instant("created_at"),
        unique("suppressions", "channel", "address"),
    )
    table(
        "deliveries",
        ident(),
        ref("enrollment_id"),
        string("step_id", 64),
        string("journey_id", 128),
        string("customer_id", 128),
        string("campaign_id", 128, null=True),
        string("channel", 8),
        string("template", 128),
        sa.Column("transactional", sa.Boolean(), nullable=False),
        string("status", 16),
        sa.Column("reason", sa.Text(), nullable=True),
        instant("due_at"),
        instant("enqueued_at", null=True),
        string("message_id", 64, null=True),
        instant("claimed_at", null=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        string("provider", 16, null=True),
        string("provider_message_id", 128, null=True),
        string("address", 320, null=True),
        sa.Column("segments", sa.SmallInteger(), nullable=True),
        instant("sent_at", null=True),
        string("provider_status", 32, null=True),
        instant("provider_status_at", null=True),
        instant("opened_at", null=True),
        instant("clicked_at", null=True),
        instant("created_at"),
        instant("updated_at"),
        sa.ForeignKeyConstraint(
            ["enrollment_id"], ["enrollments.id"], name=op.f("fk_deliveries_enrollment_id_enrollments")
        ),
        unique("deliveries", "enrollment_id", "step_id"),
    )
    indexes(
        "deliveries",
        ["customer_id", "channel", "due_at"],
        ["journey_id", "status"],
        ["provider_message_id"],
        ["status", "due_at"],
        ["status", "enqueued_at"],
    )


def downgrade() -> None:
    """Dropping a table drops its indexes."""
    for name in TABLES:
        op.drop_table(name)
