"""live customer data: write keys, anonymous ids and their events, hashed addresses

The tracking API authenticates with write keys (stored as SHA-256 only) and
keeps visitors known only by an anonymous id until an identify or alias links
them to a customer. `addr_hash(text)` is the one-way hash an erased customer's
suppressions are kept as; the suppression check compares it in SQL (SQLite
gets the same function from the engine).
"""

from alembic import op

from automation.store.ddl import ident, indexes, instant, json, string, table, unique

revision = "live_data"
down_revision = "operator_answers"

ADDR_HASH = """
CREATE OR REPLACE FUNCTION addr_hash(address text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT 'sha256:' || encode(sha256(convert_to(address, 'UTF8')), 'hex') $$
"""


def upgrade() -> None:
    table(
        "write_keys",
        ident(),
        string("name", 64),
        string("key_hash", 64),
        instant("created_at"),
        instant("revoked_at", null=True),
        unique("write_keys", "name"),
        unique("write_keys", "key_hash"),
    )
    table(
        "anonymous_ids",
        string("anonymous_id", 128),
        string("customer_id", 128, null=True),
        json("traits"),
        json("trait_times"),
        instant("created_at"),
        instant("linked_at", null=True),
        key=("anonymous_id",),
    )
    indexes("anonymous_ids", ["customer_id"])
    table(
        "anonymous_events",
        ident(),
        string("event_key", 200),
        string("anonymous_id", 128),
        string("name", 128),
        instant("occurred_at"),
        json("properties"),
        instant("received_at"),
        unique("anonymous_events", "event_key"),
    )
    indexes("anonymous_events", ["anonymous_id"], ["occurred_at"])
    indexes("events", ["occurred_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ADDR_HASH)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS addr_hash(text)")
    op.drop_index("ix_events_occurred_at", table_name="events")
    op.drop_table("anonymous_events")
    op.drop_table("anonymous_ids")
    op.drop_table("write_keys")
