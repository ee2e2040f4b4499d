"""the dashboard: users, sessions, sign-in failures, the audit log; indexes its pages read by"""

import sqlalchemy as sa
from alembic import op

from automation.store.ddl import drop_indexes, ident, indexes, instant, json, ref, string, table, unique

revision = "dashboard"
down_revision = "live_data"

INDEXES = (
    ("deliveries", ["due_at", "id"]),
    ("deliveries", ["journey_id", "due_at", "id"]),
    ("deliveries", ["campaign_id", "status"]),
    ("suppressions", ["address"]),
    ("suppressions", ["created_at", "id"]),
    ("campaigns", ["launched_at", "id"]),
    ("provider_events", ["occurred_at", "event_type"]),
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
    table(
        "dashboard_users",
        ident(),
        string("email", 320),
        string("role", 16),
        string("password_hash", 256),
        instant("created_at"),
        instant("locked_until", null=True),
        unique("dashboard_users", "email"),
    )
    table(
        "dashboard_sessions",
        string("token_hash", 64),
        ref("user_id"),
        instant("created_at"),
        instant("expires_at"),
        _owned_by_user("dashboard_sessions"),
        key=("token_hash",),
    )
    indexes("dashboard_sessions", ["user_id"])
    table(
        "dashboard_login_failures",
        ident(),
        ref("user_id"),
        instant("at"),
        _owned_by_user("dashboard_login_failures"),
    )
    indexes("dashboard_login_failures", ["user_id", "at"])
    table(
        "audit_log",
        ident(),
        instant("at"),
        string("actor", 320),
        string("action", 64),
        string("target_kind", 32),
        string("target_id", 320),
        json("detail"),
    )
    indexes("audit_log", ["target_kind", "target_id", "at"], ["at"])
    for on, columns in INDEXES:
        indexes(on, columns)


def downgrade() -> None:
    for on, columns in INDEXES:
        drop_indexes(on, columns)
    op.drop_table("audit_log")
    op.drop_table("dashboard_login_failures")
    op.drop_table("dashboard_sessions")
    op.drop_table("dashboard_users")
