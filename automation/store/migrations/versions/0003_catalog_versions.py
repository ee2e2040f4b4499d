"""catalog versions and the first due instant of a delivery

The scheduler records each journey catalog it runs, so that a worker can tell a
journey that was removed from one its own folder does not have yet. A delivery
keeps the instant its step first fell due, which deferrals never move, for
`send_within`.
"""

from alembic import op

from automation.store.ddl import ident, instant, json, string, table

revision = "catalog_versions"
down_revision = "0002"


def upgrade() -> None:
    table("catalog_versions", ident(), string("version", 64), json("journeys"), instant("recorded_at"))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(instant("first_due_at", null=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("first_due_at")
    op.drop_table("catalog_versions")
