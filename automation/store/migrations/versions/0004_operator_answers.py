"""retries of deliveries, complaints and unsubscribes per delivery, test sends

A retry (`automation deliveries retry`) is a new delivery of the same
(enrollment, step) that names the row it retries in `retry_of`: the one
delivery per (enrollment, step) rule holds for first deliveries, and each row
is retried at most once (`retry_of` is unique). `complained_at` and
`unsubscribed_at` keep what the provider (or the unsubscribe link) said about
one message. Test sends (`automation journeys test`) are recorded in their own
table, apart from the ledger and its counts.
"""

import sqlalchemy as sa
from alembic import op

from automation.store.ddl import BIG_ID, ident, instant, partial_index, string, table

revision = "operator_answers"
down_revision = "catalog_versions"


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("retry_of", BIG_ID))
        batch.add_column(instant("complained_at", null=True))
        batch.add_column(instant("unsubscribed_at", null=True))
        batch.create_foreign_key(
            op.f("fk_deliveries_retry_of_deliveries"), "deliveries", ["retry_of"], ["id"]
        )
        batch.drop_constraint("uq_deliveries_enrollment_id_step_id", type_="unique")
    partial_index(
        "uq_deliveries_enrollment_id_step_id",
        "deliveries",
        ["enrollment_id", "step_id"],
        "retry_of IS NULL",
        unique=True,
    )
    op.create_index(op.f("ix_deliveries_retry_of"), "deliveries", ["retry_of"], unique=True)
    table(
        "test_sends",
        ident(),
        string("journey_id", 128),
        string("step_id", 64),
        string("customer_id", 128),
        string("channel", 8),
        string("address", 320),
        string("provider", 16),
        string("provider_message_id", 128, null=True),
        string("sent_by", 128),
        instant("sent_at"),
    )


def downgrade() -> None:
    op.drop_table("test_sends")
    op.drop_index(op.f("ix_deliveries_retry_of"), table_name="deliveries")
    op.drop_index("uq_deliveries_enrollment_id_step_id", table_name="deliveries")
    op.execute("DELETE FROM deliveries WHERE retry_of IS NOT NULL")
    with op.batch_alter_table("deliveries") as batch:
        batch.create_unique_constraint("uq_deliveries_enrollment_id_step_id", ["enrollment_id", "step_id"])
        batch.drop_constraint(op.f("fk_deliveries_retry_of_deliveries"), type_="foreignkey")
        batch.drop_column("unsubscribed_at")
        batch.drop_column("complained_at")
        batch.drop_column("retry_of")
