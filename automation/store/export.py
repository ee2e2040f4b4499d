"""Everything held about one customer, as one JSON-ready document (their right of access)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from automation.store import models
from automation.store.models import (
    AnonymousId,
    Base,
    Customer,
    CustomerEventStat,
    Delivery,
    Enrollment,
    Event,
    Suppression,
    TopicChoice,
)
from automation.store.suppressions import address_hash


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _row(obj: Base, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {a.key: _plain(getattr(obj, a.key)) for a in inspect(obj).mapper.column_attrs if a.key not in skip}


def _loyalty(s: Session, customer_id: str) -> dict[str, Any]:
    """The account (debt, tier, balances), its point lots and its transactions, oldest first."""
    account = s.get(models.LoyaltyAccount, customer_id)
    lots = (
        select(models.LoyaltyLot)
        .where(models.LoyaltyLot.customer_id == customer_id)
        .order_by(models.LoyaltyLot.earned_at)
    )
    txns = (
        select(models.LoyaltyTransaction)
        .where(models.LoyaltyTransaction.customer_id == customer_id)
        .order_by(models.LoyaltyTransaction.id)
    )
    return {
        "account": _row(account, ("customer_id",)) if account is not None else None,
        "lots": [_row(lot, ("customer_id",)) for lot in s.scalars(lots)],
        "transactions": [_row(t, ("id", "customer_id")) for t in s.scalars(txns)],
    }


def export(s: Session, customer_id: str) -> dict[str, Any] | None:
    """Everything held about the customer, topic choices and loyalty included; None if nothing is held."""
    customer = s.get(Customer, customer_id)
    deliveries = list(
        s.scalars(select(Delivery).where(Delivery.customer_id == customer_id).order_by(Delivery.id))
    )
    if customer is None and not deliveries:
        return None
    addresses: set[tuple[str, str | None]] = {(d.channel, d.address) for d in deliveries}
    if customer is not None:
        addresses |= {("email", customer.email), ("sms", customer.phone)}
    suppressed = [
        row
        for channel, address in sorted((c, a) for c, a in addresses if a)
        for row in s.scalars(
            select(Suppression).where(
                Suppression.channel == channel, Suppression.address.in_([address, address_hash(address)])
            )
        )
    ]
    by_id = Event.customer_id == customer_id
    return {
        "customer_id": customer_id,
        "profile": _row(customer) if customer is not None else None,
        "anonymous_ids": [
            a.anonymous_id
            for a in s.scalars(select(AnonymousId).where(AnonymousId.customer_id == customer_id))
        ],
        "events": [
            _row(e, ("id",)) for e in s.scalars(select(Event).where(by_id).order_by(Event.occurred_at))
        ],
        "event_stats": [
            _row(e, ("customer_id",))
            for e in s.scalars(select(CustomerEventStat).where(CustomerEventStat.customer_id == customer_id))
        ],
        "enrollments": [
            _row(e)
            for e in s.scalars(
                select(Enrollment).where(Enrollment.customer_id == customer_id).order_by(Enrollment.id)
            )
        ],
        "deliveries": [_row(d) for d in deliveries],
        "suppressions": [_row(x, ("id",)) for x in suppressed],
        "topic_choices": [
            _row(t, ("customer_id",))
            for t in s.scalars(
                select(TopicChoice).where(TopicChoice.customer_id == customer_id).order_by(TopicChoice.topic)
            )
        ],
        "loyalty": _loyalty(s, customer_id),
    }
