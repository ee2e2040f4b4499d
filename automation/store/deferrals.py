"""The deferral log: each time a delivery was made to wait, kept after it is sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from automation.store.models import DeliveryDeferral


def record(s: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Log deferrals given as `delivery_id`, `judged_at`, `until`, `reason` (one statement)."""
    if rows:
        s.execute(insert(DeliveryDeferral), list(rows))


def of(s: Session, delivery_ids: Sequence[int]) -> list[DeliveryDeferral]:
    """The deferrals of these deliveries, oldest first."""
    if not delivery_ids:
        return []
    return list(
        s.scalars(
            select(DeliveryDeferral)
            .where(DeliveryDeferral.delivery_id.in_(list(delivery_ids)))
            .order_by(DeliveryDeferral.judged_at, DeliveryDeferral.id)
        )
    )
