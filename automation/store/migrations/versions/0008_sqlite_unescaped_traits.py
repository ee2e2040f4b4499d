"""SQLite: rewrite custom traits stored with `\\u` escapes, so that non-ASCII trait names match.

SQLite's JSON paths compare key text as stored; keys written ASCII-escaped
never matched a filter on a non-ASCII trait. New rows are written unescaped
(`db.json_text`); this rewrites the old ones. PostgreSQL (jsonb) needs nothing.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "sqlite_unescaped_traits"
down_revision = "heartbeats"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    escaped = bind.execute(sa.text("SELECT id, traits FROM customers WHERE instr(traits, '\\u') > 0"))
    for customer_id, traits in escaped.all():
        bind.execute(
            sa.text("UPDATE customers SET traits = :traits WHERE id = :id"),
            {"id": customer_id, "traits": json.dumps(json.loads(traits), ensure_ascii=False)},
        )


def downgrade() -> None:
    """Escaped and unescaped keys are the same JSON: nothing to undo."""
