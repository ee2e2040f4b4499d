"""live customer data: write keys, anonymous ids and their events, hashed addresses

The tracking API authenticates with write keys (stored as SHA-256 only) and
keeps visitors known only by an anonymous id until an identify or alias links
them to a customer. `addr_hash(text)` is the one-way hash an erased customer's
suppressions are kept as; the suppression check compares it in SQL (SQLite
gets the same function from the engine).

Revision ID: live_data
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "live_data"
down_revision = "operator_answers"
branch_labels = None
depends_on = None

UTC_TS = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(JSONB(), "postgresql")
ADDR_HASH = """
CREATE OR REPLACE FUNCTION addr_hash(address text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT 'sha256:' || encode(sha256(convert_to(address, 'UTF8')), 'hex') $$
"""


def upgrade() -> None:
    op.create_table(
        "write_keys",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTC_TS, nullable=False),
        sa.Column("revoked_at", UTC_TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_write_keys"),
        sa.UniqueConstraint("name", name="uq_write_keys_name"),
        sa.UniqueConstraint("key_hash", name="uq_write_keys_key_hash"),
    )
    op.create_table(
        "anonymous_ids",
        sa.Column("anonymous_id", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=True),
        sa.Column("traits", JSON, nullable=False),
        sa.Column("trait_times", JSON, nullable=False),
        sa.Column("created_at", UTC_TS, nullable=False),
        sa.Column("linked_at", UTC_TS, nullable=True),
        sa.PrimaryKeyConstraint("anonymous_id", name="pk_anonymous_ids"),
    )
    op.create_index("ix_anonymous_ids_customer_id", "anonymous_ids", ["customer_id"])
    op.create_table(
        "anonymous_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("event_key", sa.String(200), nullable=False),
        sa.Column("anonymous_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("occurred_at", UTC_TS, nullable=False),
        sa.Column("properties", JSON, nullable=False),
        sa.Column("received_at", UTC_TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_anonymous_events"),
        sa.UniqueConstraint("event_key", name="uq_anonymous_events_event_key"),
    )
    op.create_index("ix_anonymous_events_anonymous_id", "anonymous_events", ["anonymous_id"])
    op.create_index("ix_anonymous_events_occurred_at", "anonymous_events", ["occurred_at"])
    op.create_index("ix_events_occurred_at", "events", ["occurred_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ADDR_HASH)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS addr_hash(text)")
    op.drop_index("ix_events_occurred_at", table_name="events")
    op.drop_table("anonymous_events")
    op.drop_table("anonymous_ids")
    op.drop_table("write_keys")
