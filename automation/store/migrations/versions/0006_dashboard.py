"""the dashboard: users, sessions, sign-in failures, the audit log; indexes its pages read by

Revision ID: dashboard
Revises: live_data
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "dashboard"
down_revision = "live_data"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
INDEXES = (
    ("ix_deliveries_due_at_id", "deliveries", ["due_at", "id"]),
    ("ix_deliveries_journey_id_due_at_id", "deliveries", ["journey_id", "due_at", "id"]),
    ("ix_deliveries_campaign_id_status", "deliveries", ["campaign_id", "status"]),
    ("ix_suppressions_address", "suppressions", ["address"]),
    ("ix_suppressions_created_at_id", "suppressions", ["created_at", "id"]),
    ("ix_campaigns_launched_at_id", "campaigns", ["launched_at", "id"]),
    ("ix_provider_events_occurred_at_event_type", "provider_events", ["occurred_at", "event_type"]),
)


def _owned_by_user(table: str) -> sa.ForeignKeyConstraint:
    """A row that goes when its user goes."""
    return sa.ForeignKeyConstraint(
        ["user_id"],
        ["dashboard_users.id"],
        name=op.f(f"fk_{table}_user_id_dashboard_users"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "dashboard_users",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("locked_until", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_users")),
        sa.UniqueConstraint("email", name=op.f("uq_dashboard_users_email")),
    )
    op.create_table(
        "dashboard_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        _owned_by_user("dashboard_sessions"),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_dashboard_sessions")),
    )
    op.create_index(op.f("ix_dashboard_sessions_user_id"), "dashboard_sessions", ["user_id"])
    op.create_table(
        "dashboard_login_failures",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("at", UTC, nullable=False),
        _owned_by_user("dashboard_login_failures"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_login_failures")),
    )
    op.create_index(
        op.f("ix_dashboard_login_failures_user_id_at"), "dashboard_login_failures", ["user_id", "at"]
    )
    op.create_table(
        "audit_log",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_kind", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=320), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(
        op.f("ix_audit_log_target_kind_target_id_at"), "audit_log", ["target_kind", "target_id", "at"]
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_table("audit_log")
    op.drop_table("dashboard_login_failures")
    op.drop_table("dashboard_sessions")
    op.drop_table("dashboard_users")
