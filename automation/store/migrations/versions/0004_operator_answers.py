"""retries of deliveries, complaints and unsubscribes per delivery, test sends

A retry (`automation deliveries retry`) is a new delivery of the same
(enrollment, step) that names the row it retries in `retry_of`: the one
delivery per (enrollment, step) rule holds for first deliveries, and each row
is retried at most once (`retry_of` is unique). `complained_at` and
`unsubscribed_at` keep what the provider (or the unsubscribe link) said about
one message. Test sends (`automation journeys test`) are recorded in their own
table, apart from the ledger and its counts.

Revision ID: operator_answers
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "operator_answers"
down_revision = "catalog_versions"
branch_labels = None
depends_on = None

FIRST = sa.text("retry_of IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("retry_of", sa.BigInteger().with_variant(sa.Integer(), "sqlite")))
        batch.add_column(sa.Column("complained_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(
            op.f("fk_deliveries_retry_of_deliveries"), "deliveries", ["retry_of"], ["id"]
        )
        batch.drop_constraint("uq_deliveries_enrollment_id_step_id", type_="unique")
    op.create_index(
        "uq_deliveries_enrollment_id_step_id",
        "deliveries",
        ["enrollment_id", "step_id"],
        unique=True,
        postgresql_where=FIRST,
        sqlite_where=FIRST,
    )
    op.create_index(op.f("ix_deliveries_retry_of"), "deliveries", ["retry_of"], unique=True)
    op.create_table(
        "test_sends",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True),
        sa.Column("journey_id", sa.String(length=128), nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_message_id", sa.String(length=128), nullable=True),
        sa.Column("sent_by", sa.String(length=128), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_sends")),
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
