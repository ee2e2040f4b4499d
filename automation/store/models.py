"""The database schema: customer state, the enrollment and delivery ledger.

Typed SQLAlchemy 2 tables. Every timestamp is stored and returned as an aware
UTC datetime on both PostgreSQL and SQLite (`UTCDateTime`), so the core never
compares naive with aware times. Alembic migrations live in `migrations/`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from automation.core.statuses import CampaignStatus, Channel, DeliveryStatus, EnrollmentState


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC timestamp everywhere; SQLite keeps naive UTC underneath."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


E = TypeVar("E", bound=StrEnum)


class EnumText(TypeDecorator[E]):
    """A closed set stored as its plain string value; a value outside the set is refused on write."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


JSONType = JSON().with_variant(JSONB(), "postgresql")
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Numbered:
    """A table whose rows are numbered by the database: a big-integer `id` primary key."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True, sort_order=-1)


class Customer(Base):
    """One person. Well-known traits are columns; the rest live in `traits`."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    timezone: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(128))
    last_name: Mapped[str | None] = mapped_column(String(128))
    tier: Mapped[str | None] = mapped_column(String(32))
    signed_up_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    birthday: Mapped[dt.date | None] = mapped_column(Date)
    email_opt_in: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    sms_opt_in: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    traits: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # When each trait last became true, so an older identify never wins.
    trait_times: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    # Order facts kept on ingest so that journeys query an index, not events.
    last_order_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    order_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lifetime_value: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0), server_default="0")
    # Written by `insight refresh`: RFM quintile scores and segment, BG/NBD and Gamma-Gamma predictions.
    rfm_r: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_f: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_m: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_segment: Mapped[str | None] = mapped_column(String(32))
    p_alive: Mapped[float | None] = mapped_column(Float)
    expected_orders_90d: Mapped[float | None] = mapped_column(Float)
    predicted_clv_365d: Mapped[float | None] = mapped_column(Float)
    clv_decile: Mapped[int | None] = mapped_column(SmallInteger)
    insight_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Month*100+day of the date traits, for an indexed anniversary lookup.
    signed_up_md: Mapped[int | None] = mapped_column(SmallInteger)
    birthday_md: Mapped[int | None] = mapped_column(SmallInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index(None, "tier"),
        Index(None, "email"),
        Index(None, "phone"),
        # The anniversary lookup: the days due in each zone, and the zones (`store.skipscan`).
        Index(None, "birthday_md", "timezone"),
        Index(None, "signed_up_md", "timezone"),
        Index(None, "timezone"),
    )


class Tracked(Numbered):
    """A track call's columns, whoever made it; `event_key` (its event_id, else a hash) is unique."""

    event_key: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Event(Tracked, Base):
    """A tracked event of a known customer."""

    __tablename__ = "events"

    customer_id: Mapped[str] = mapped_column(String(128))

    __table_args__ = (
        # Covering on PostgreSQL: the event trigger's idle check reads the index alone (`enroll.event`).
        Index(None, "name", "occurred_at", postgresql_include=["customer_id", "event_key"]),
        Index(None, "customer_id", "name", "occurred_at"),
    )


class CustomerEventStat(Base):
    """Per customer and event name: first/last time and count (inactivity, filters)."""

    __tablename__ = "customer_event_stats"

    customer_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    first_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index(None, "name", "last_at"),)


class Enrollment(Numbered, Base):
    """A customer inside a journey for one occurrence; unique per occurrence."""

    __tablename__ = "enrollments"

    journey_id: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[str] = mapped_column(String(128))
    occurrence_key: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    entered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    state: Mapped[EnrollmentState] = mapped_column(
        EnumText(EnrollmentState, 16), default=EnrollmentState.ACTIVE
    )
    next_step_id: Mapped[str | None] = mapped_column(String(64))
    next_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    campaign_id: Mapped[str | None] = mapped_column(String(128), index=True)
    exited_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    exit_reason: Mapped[str | None] = mapped_column(String(64))
    converted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("journey_id", "customer_id", "occurrence_key"),
        Index(
            "ix_enrollments_active_next_at",
            "next_at",
            "id",
            postgresql_where=text(f"state = '{EnrollmentState.ACTIVE}'"),
            sqlite_where=text(f"state = '{EnrollmentState.ACTIVE}'"),
        ),
        Index(None, "customer_id", "journey_id", "entered_at"),
        Index(None, "journey_id", "state"),
        # The goal exits of `automation status`: few among many enrollments.
        Index(
            "ix_enrollments_journey_id_converted_at",
            "journey_id",
            "converted_at",
            postgresql_where=text("converted_at IS NOT NULL"),
            sqlite_where=text("converted_at IS NOT NULL"),
        ),
    )


def _present(*columns: str, when: str) -> Index:
    """An index of the deliveries whose `when` is set: a new delivery of a journey has none of
    these set, so making one writes none of these indexes (`tick2idle`)."""
    where = text(f"{when} IS NOT NULL")
    return Index(None, *columns, postgresql_where=where, sqlite_where=where)


class Delivery(Numbered, Base):
    """One message for one (enrollment, step): the ledger the worker claims from."""

    __tablename__ = "deliveries"

    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id"))
    step_id: Mapped[str] = mapped_column(String(64))
    journey_id: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[str] = mapped_column(String(128))
    campaign_id: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[Channel] = mapped_column(EnumText(Channel, 8))
    template: Mapped[str] = mapped_column(String(128))
    arm: Mapped[str | None] = mapped_column(String(64))  # the experiment arm (`automation.core.arms`)
    transactional: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[DeliveryStatus] = mapped_column(
        EnumText(DeliveryStatus, 16), default=DeliveryStatus.QUEUED
    )
    reason: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # When its step first fell due: deferrals move `due_at`, never this (`send_within` counts from it).
    first_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The Dramatiq message that claimed it: a redelivery of that same message
    # may resume; any other copy is dropped.
    message_id: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider: Mapped[str | None] = mapped_column(String(16))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    address: Mapped[str | None] = mapped_column(String(320))
    segments: Mapped[int | None] = mapped_column(SmallInteger)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    provider_status: Mapped[str | None] = mapped_column(String(32))
    provider_status_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    clicked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    complained_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # A retry (`automation deliveries retry`) names the row it retries; each row is retried once.
    retry_of: Mapped[int | None] = mapped_column(BigId, ForeignKey("deliveries.id"), index=True, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # One first delivery per (enrollment, step); retries name theirs in `retry_of`.
        Index(
            "uq_deliveries_enrollment_id_step_id",
            "enrollment_id",
            "step_id",
            unique=True,
            postgresql_where=text("retry_of IS NULL"),
            sqlite_where=text("retry_of IS NULL"),
        ),
        Index(None, "status", "due_at"),
        Index(None, "status", "enqueued_at"),
        _present("status", "claimed_at", when="claimed_at"),
        Index(None, "customer_id", "channel", "due_at"),
        Index(None, "journey_id", "status"),
        # The dashboard's ledger pages by (due_at, id), alone or within a journey or a campaign.
        Index(None, "due_at", "id"),
        Index(None, "journey_id", "due_at", "id"),
        _present("campaign_id", "status", when="campaign_id"),
        _present("provider_message_id", when="provider_message_id"),
        Index(None, "journey_id", "step_id", "arm"),
    )


class SplitDecision(Base):
    """The path one enrollment took at one `split` step, and when it reached the split.

    An empty path makes no delivery, so this is the only record of it; the
    experiment report counts each path's entrants and conversions from here.
    No customer id: the enrollment names the customer (and erasure pseudonymises it there).
    """

    __tablename__ = "split_decisions"

    enrollment_id: Mapped[int] = mapped_column(BigId, ForeignKey("enrollments.id"), primary_key=True)
    step_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    journey_id: Mapped[str] = mapped_column(String(128))
    path_id: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "journey_id", "step_id", "path_id"),)


class Suppression(Numbered, Base):
    """An address we must not message on a channel, and why."""

    __tablename__ = "suppressions"

    channel: Mapped[Channel] = mapped_column(EnumText(Channel, 8))
    address: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32), default="manual")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("channel", "address"),
        Index(None, "address"),
        Index(None, "created_at", "id"),
    )


class Campaign(Base):
    """A manual launch of a journey to an audience."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    journey_id: Mapped[str] = mapped_column(String(128))
    launched_by: Mapped[str] = mapped_column(String(128))
    launched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    audience_size: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[CampaignStatus] = mapped_column(
        EnumText(CampaignStatus, 16), default=CampaignStatus.LAUNCHING
    )
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: While `enrolling`: the count the editor confirmed, and the last customer id enrolled so far.
    confirmed_audience: Mapped[int | None] = mapped_column(Integer)
    enrolled_through: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (Index(None, "launched_at", "id"),)


class TestSend(Numbered, Base):
    """A test message (`automation journeys test`): kept apart from the ledger and its counts."""

    __tablename__ = "test_sends"
    __test__ = False  # a table, not a pytest class

    journey_id: Mapped[str] = mapped_column(String(128))
    step_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(8))
    address: Mapped[str] = mapped_column(String(320))
    provider: Mapped[str] = mapped_column(String(16))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    sent_by: Mapped[str] = mapped_column(String(128))
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ProviderEvent(Numbered, Base):
    """A webhook event as received, written before the 2xx; unique per provider event."""

    __tablename__ = "provider_events"

    provider: Mapped[str] = mapped_column(String(16))
    event_key: Mapped[str] = mapped_column(String(200), unique=True)
    delivery_id: Mapped[int | None] = mapped_column(BigId, index=True)
    event_type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "occurred_at", "event_type"),)


class CatalogVersion(Numbered, Base):
    """A journey catalog the scheduler ran: the newest row is the version every process should hold."""

    __tablename__ = "catalog_versions"

    version: Mapped[str] = mapped_column(String(64))
    journeys: Mapped[list[str]] = mapped_column(JSONType, default=list)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class WriteKey(Numbered, Base):
    """A tracking-API write key, kept only as its SHA-256; revoked keys stay listed."""

    __tablename__ = "write_keys"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AnonymousId(Base):
    """A visitor known only by a tracking `anonymousId`, and the customer it was linked to.

    Until it is linked, its traits wait here (with their times, merged like a
    customer's) and its events in `anonymous_events`.
    """

    __tablename__ = "anonymous_ids"

    anonymous_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(128), index=True)
    traits: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    trait_times: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    linked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AnonymousEvent(Tracked, Base):
    """An event of a not yet linked anonymous id; moved into `events` when it is linked."""

    __tablename__ = "anonymous_events"

    anonymous_id: Mapped[str] = mapped_column(String(128), index=True)


class DeliveryDeferral(Numbered, Base):
    """A delivery judged at `judged_at` and made to wait until `until`, and why.

    The delivery row keeps only its latest state; this keeps each deferral, so
    the customer's timeline can still say "deferred for quiet hours until 08:00"
    after the message went out.
    """

    __tablename__ = "delivery_deferrals"

    delivery_id: Mapped[int] = mapped_column(BigId, index=True)
    judged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)


class DashboardUser(Numbered, Base):
    """A person who signs in to the dashboard: a `viewer` or an `editor`."""

    __tablename__ = "dashboard_users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Set when too many sign-ins failed; attempts before it are refused unheard.
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class DashboardSession(Base):
    """A signed-in browser; the cookie carries the token, the table only its SHA-256."""

    __tablename__ = "dashboard_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("dashboard_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class LoginFailure(Numbered, Base):
    """One failed sign-in for an account, counted for the lockout."""

    __tablename__ = "dashboard_login_failures"

    user_id: Mapped[int] = mapped_column(ForeignKey("dashboard_users.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "user_id", "at"),)


class AuditEntry(Numbered, Base):
    """An editor's action: who, when, what, on which object (shown on that object's page)."""

    __tablename__ = "audit_log"

    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    target_kind: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(320))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    __table_args__ = (Index(None, "target_kind", "target_id", "at"), Index(None, "at"))


class Heartbeat(Base):
    """When a recurring process last finished its work (`tick`: the scheduler), for health checks."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class TopicChoice(Base):
    """A customer's newest choice in one subscription topic: when, how, and its confirmation."""

    __tablename__ = "topic_choices"

    customer_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64), primary_key=True)
    subscribed: Mapped[bool] = mapped_column(Boolean)
    chosen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    how: Mapped[str] = mapped_column(String(16))
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class PreferenceUndo(Base):
    """The choices a customer had before leaving from one message's link, kept to undo it for 24 hours."""

    __tablename__ = "preference_undos"

    delivery_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(128), index=True)
    left_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    previous: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class LoyaltyAccount(Base):
    """A customer's place in the loyalty programme: debt, tier, and when the tick next has work for it."""

    __tablename__ = "loyalty_accounts"

    customer_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    debt: Mapped[int] = mapped_column(Integer, default=0)
    # The newest instant the ledger was brought to.
    clock: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    tier: Mapped[str | None] = mapped_column(String(64))
    tier_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Indexed: the `tier_will_downgrade` trigger reads the reviews coming up within its window.
    tier_review_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    # The next activation, expiry or tier review: what the tick selects on.
    next_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    # The balances as of the latest write, for filters (`core.filters.LOYALTY_FACTS`).
    points: Mapped[int] = mapped_column(Integer, default=0)
    pending_points: Mapped[int] = mapped_column(Integer, default=0)
    expiring_points: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class LoyaltyLot(Base):
    """Points earned from one cause, with their activation, expiry and what became of them."""

    __tablename__ = "loyalty_lots"

    customer_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(240), primary_key=True)
    event: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[str | None] = mapped_column(String(200))
    earned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    activates_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    points: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    spent: Mapped[int] = mapped_column(Integer, default=0)
    expired: Mapped[int] = mapped_column(Integer, default=0)
    reversed: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))
    refunded_amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))


class LoyaltyTransaction(Base):
    """One append-only points transaction; `key` is derived from its cause and unique per customer."""

    __tablename__ = "loyalty_transactions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(260))
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    lot: Mapped[str | None] = mapped_column(String(240))
    detail: Mapped[str] = mapped_column(String(200), default="")
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("customer_id", "key"),)


class CouponPool(Base):
    """A named pool of coupon codes and its settings (made by the first import or generate)."""

    __tablename__ = "coupon_pools"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    low_water: Mapped[int] = mapped_column(Integer, default=100)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Coupon(Base):
    """One code of a pool: assigned to at most one delivery, redeemed by at most one order."""

    __tablename__ = "coupons"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pool: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64), index=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    delivery_id: Mapped[int | None] = mapped_column(BigId, unique=True)
    assigned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    redeemed_by: Mapped[str | None] = mapped_column(String(200))  # the order's event id
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("pool", "code"),
        Index(
            "ix_coupons_unassigned",
            "pool",
            "id",
            postgresql_where=text("delivery_id IS NULL"),
            sqlite_where=text("delivery_id IS NULL"),
        ),
    )


class KpiSnapshot(Base):
    """The figures of `automation kpis` as one `insight refresh` of a UTC day found them: the trend."""

    __tablename__ = "kpi_snapshots"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    taken_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    figures: Mapped[dict[str, Any]] = mapped_column(JSONType)


class EnrollmentWait(Base):
    """An enrollment parked at a `wait_for` step: the event it waits for, whose, and until when.

    Found by (customer_id, event) when new events arrive (the early wake); the row
    is deleted once the step has decided, so a late event never reopens it.
    """

    __tablename__ = "enrollment_waits"

    enrollment_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    journey_id: Mapped[str] = mapped_column(String(128), index=True)
    step_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(128))
    # The trigger event's values of the step's `match` properties (`core.waiting.match_key`).
    match_key: Mapped[str] = mapped_column(Text)
    reached_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    deadline: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "customer_id", "event"),)


class Watermark(Base):
    """How far a pass has read an append-only table: the newest id it has looked at (`wake`: events)."""

    __tablename__ = "watermarks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigId)


class EntryMark(Base):
    """How far an event journey's tick has read the events (`enroll.marks`), under which entry rules.

    `last_id` is an id below which every event was committed when it was read;
    `read_at` the `now` of that tick. A change of the rules or an earlier `now`
    reads the whole look-back again.
    """

    __tablename__ = "entry_marks"

    journey_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    rules: Mapped[str] = mapped_column(String(64))
    last_id: Mapped[int] = mapped_column(BigId)
    read_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class EntryPending(Base):
    """An event an event journey has read and not enrolled (audience, cool-down, not yet occurred).

    Read again by every tick until it enrolls or leaves the look-back.
    """

    __tablename__ = "entry_pending"

    journey_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(128))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class DeliveryTally(Numbered, Base):
    """Changes of the ledger's counts per key, appended by a trigger (`automation.store.tallies`)."""

    __tablename__ = "delivery_tallies"

    journey_id: Mapped[str] = mapped_column(String(128))
    step_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    arm: Mapped[str | None] = mapped_column(String(64))
    day: Mapped[str] = mapped_column(String(10))  # of `due_at`, UTC
    n: Mapped[int] = mapped_column(BigInteger)
    opened: Mapped[int] = mapped_column(BigInteger)
    clicked: Mapped[int] = mapped_column(BigInteger)
    delivered: Mapped[int] = mapped_column(BigInteger)
    bounced: Mapped[int] = mapped_column(BigInteger)
    complained: Mapped[int] = mapped_column(BigInteger)
    unsubscribed: Mapped[int] = mapped_column(BigInteger)


class Conversion(Base):
    """A delivery that a goal event of its journey followed (the rules: `automation.store.conversions`)."""

    __tablename__ = "conversions"

    delivery_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    journey_id: Mapped[str] = mapped_column(String(128))
    step_id: Mapped[str] = mapped_column(String(64))
    arm: Mapped[str | None] = mapped_column(String(64))
    enrollment_id: Mapped[int] = mapped_column(BigId)
    customer_id: Mapped[str] = mapped_column(String(128))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: Sent, and a goal event followed within the window after `due_at` (`automation status`).
    converted: Mapped[bool] = mapped_column(Boolean)
    #: The step's first delivery, and a goal event followed within the window after the step fell due.
    anchored: Mapped[bool] = mapped_column(Boolean)
    #: The `total` of the goal events that anchored it (an experiment's revenue).
    revenue: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index(None, "journey_id", "due_at"),
        Index(None, "journey_id", "step_id", "arm"),
        Index(None, "customer_id"),
    )


class ConversionGoal(Base):
    """The goal each journey's conversions were last computed for: another goal recomputes them."""

    __tablename__ = "conversion_goals"

    journey_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    event: Mapped[str] = mapped_column(String(128))
    within_s: Mapped[int] = mapped_column(BigInteger)


class ConversionQueue(Numbered, Base):
    """A customer whose deliveries or events changed since the last fold, appended by triggers."""

    __tablename__ = "conversion_queue"

    customer_id: Mapped[str] = mapped_column(String(128))


class ProviderEventTally(Numbered, Base):
    """Changes of the count of provider events per UTC day, provider and type, appended by a trigger."""

    __tablename__ = "provider_event_tallies"

    day: Mapped[str] = mapped_column(String(10))
    provider: Mapped[str] = mapped_column(String(16))
    event_type: Mapped[str] = mapped_column(String(32))
    n: Mapped[int] = mapped_column(BigInteger)


class Stages:
    """Per journey and enrollment, a count for each stage of the funnel after entry."""

    journey_id: Mapped[str] = mapped_column(String(128))
    enrollment_id: Mapped[int] = mapped_column(BigId)
    sent: Mapped[int] = mapped_column(BigInteger, server_default="0")
    delivered: Mapped[int] = mapped_column(BigInteger, server_default="0")
    opened: Mapped[int] = mapped_column(BigInteger, server_default="0")
    clicked: Mapped[int] = mapped_column(BigInteger, server_default="0")
    converted: Mapped[int] = mapped_column(BigInteger, server_default="0")


class Reach(Stages, Base):
    """Per journey and enrollment, how many of its deliveries reached each stage of the funnel (a stage
    holds the enrollment when above 0): `ReachChange` rows folded in place (`automation.store.tallies`)."""

    __tablename__ = "reach"
    __table_args__ = (PrimaryKeyConstraint("journey_id", "enrollment_id"),)


class ReachChange(Numbered, Stages, Base):
    """Changes of `reach` per journey and enrollment, appended by triggers on deliveries and conversions."""

    __tablename__ = "reach_changes"


class ReachTally(Numbered, Base):
    """Changes of the count of enrollments at each stage of the funnel per journey, appended by a trigger."""

    __tablename__ = "reach_tallies"

    journey_id: Mapped[str] = mapped_column(String(128))
    n: Mapped[int] = mapped_column(BigInteger)
    sent: Mapped[int] = mapped_column(BigInteger)
    delivered: Mapped[int] = mapped_column(BigInteger)
    opened: Mapped[int] = mapped_column(BigInteger)
    clicked: Mapped[int] = mapped_column(BigInteger)
    converted: Mapped[int] = mapped_column(BigInteger)


class EnrollmentTally(Numbered, Base):
    """Changes of the count of enrollments per journey, state and UTC day of entry, appended by a trigger."""

    __tablename__ = "enrollment_tallies"

    journey_id: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    day: Mapped[str] = mapped_column(String(10))  # of `entered_at`, UTC
    n: Mapped[int] = mapped_column(BigInteger)
