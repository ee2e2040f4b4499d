"""Storing provider feedback and applying it to deliveries and suppressions.

Every event is written to `provider_events` (unique `event_key`) in the same
transaction that applies it, and the caller replies 2xx only after the commit:
an event the provider saw accepted is never lost, and a resent one (same key)
changes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from automation.core.feedback import Feedback, supersedes
from automation.store import suppressions
from automation.store.models import Delivery, ProviderEvent
from automation.store.sqlutil import insert_ignore

#: Provider events that say something about one message, and the delivery column that keeps it.
FLAGS = {
    "spamreport": "complained_at",
    "unsubscribe": "unsubscribed_at",
    "group_unsubscribe": "unsubscribed_at",
}


def record(s: Session, items: Sequence[Feedback], received_at: dt.datetime) -> list[Feedback]:
    """Store the events not seen before and apply them; returns those new ones."""
    first: dict[str, Feedback] = {}
    for f in items:
        first.setdefault(f.event_key, f)
    resolved = [_resolve(s, f) for f in first.values()]
    rows = [
        {
            "provider": f.provider,
            "event_key": f.event_key,
            "delivery_id": f.delivery_id,
            "event_type": f.event_type,
            "occurred_at": f.occurred_at,
            "payload": f.payload,
            "received_at": received_at,
        }
        for f in resolved
    ]
    inserted = {
        key for (key,) in insert_ignore(s, ProviderEvent.__table__, rows, ["event_key"], ["event_key"])
    }
    fresh = sorted((f for f in resolved if f.event_key in inserted), key=lambda f: f.occurred_at)
    deliveries = _lock(s, {f.delivery_id for f in fresh if f.delivery_id is not None})
    for f in fresh:
        d = deliveries.get(f.delivery_id) if f.delivery_id is not None else None
        _apply(s, f, d if d is not None and d.channel == f.channel else None, received_at)
    return fresh


def _lock(s: Session, ids: set[int]) -> dict[int, Delivery]:
    """The deliveries a batch touches, locked in id order so concurrent batches cannot deadlock."""
    if not ids:
        return {}
    stmt = select(Delivery).where(Delivery.id.in_(sorted(ids))).order_by(Delivery.id)
    if s.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return {d.id: d for d in s.scalars(stmt)}


def _resolve(s: Session, f: Feedback) -> Feedback:
    """Fill the delivery id from the provider's message id when the event lacks it."""
    if f.delivery_id is not None or not f.provider_message_id:
        return f
    found = s.scalar(
        select(Delivery.id).where(
            Delivery.provider_message_id == f.provider_message_id, Delivery.channel == f.channel
        )
    )
    if found is None:
        return f
    return replace(f, delivery_id=found)


def _apply(s: Session, f: Feedback, d: Delivery | None, now: dt.datetime) -> None:
    """One new event: advance its delivery's status and engagement, then suppress or lift."""
    address = f.address
    if d is not None:
        address = d.address or address
        changed = False
        if f.status and supersedes(f.status, f.occurred_at, d.provider_status, d.provider_status_at):
            d.provider_status, d.provider_status_at = f.status, f.occurred_at
            changed = True
        if (f.opened or f.clicked) and (d.opened_at is None or f.occurred_at < d.opened_at):
            d.opened_at = f.occurred_at  # a click implies the message was opened
            changed = True
        if f.clicked and (d.clicked_at is None or f.occurred_at < d.clicked_at):
            d.clicked_at = f.occurred_at
            changed = True
        flag = FLAGS.get(f.event_type)
        if flag is not None and getattr(d, flag) is None:
            setattr(d, flag, f.occurred_at)  # a complaint or an unsubscribe about this message
            changed = True
        if changed:
            d.updated_at = now
    if not address:
        return
    if f.suppress:
        suppressions.suppress(s, f.channel, address, f.suppress, f.provider, now)
    elif f.unsuppress:
        suppressions.lift(s, f.channel, address, f.unsuppress)
