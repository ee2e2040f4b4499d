"""The variables a template sees for one message. Pure."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from automation.core.filters import INSIGHT_FACTS
from automation.core.journeys import Journey
from automation.core.records import WELL_KNOWN
from automation.core.standing import EMPTY


def customer_view(customer: Any) -> dict[str, Any]:
    """Traits (custom ones first, well-known columns over them) plus order and insight facts."""
    view: dict[str, Any] = dict(customer.traits or {})
    for name in WELL_KNOWN:
        view[name] = getattr(customer, name)
    view["id"] = customer.id
    view["order_count"] = customer.order_count or 0
    view["lifetime_value"] = float(customer.lifetime_value or Decimal(0))
    view["last_order_at"] = customer.last_order_at
    for name in INSIGHT_FACTS:
        view[name] = getattr(customer, name, None)
    return view


def message_context(
    journey: Journey,
    customer: Any,
    trigger_variables: dict[str, Any],
    *,
    delivery_id: int,
    unsubscribe_url: str,
    confirm_url: str,
    brand: str,
    shop: dict[str, Any] | None = None,
    loyalty: dict[str, Any] | None = None,
    coupon: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a template may read: the common variables and the trigger kind's (`enroll.kinds`).

    `shop` holds the brand, shop URL, postal address and currency from settings; `loyalty`
    the customer's points and tier (`core.standing`); `coupon` the code the delivery holds
    when its step names a pool (`code` and `expires_at` are None otherwise).
    """
    return {
        "customer": customer_view(customer),
        "journey": {"id": journey.id, "name": journey.name},
        "brand": brand,
        "shop": shop or {"name": brand, "url": None, "postal_address": None, "currency": None},
        "unsubscribe_url": unsubscribe_url,
        "confirm_url": confirm_url,
        "delivery_id": delivery_id,
        "loyalty": loyalty or dict(EMPTY),
        "coupon": coupon or {"code": None, "expires_at": None},
        **trigger_variables,
    }
