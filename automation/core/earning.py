"""What one event does to a customer's points under the programme: earn, redeem or refund. Pure.

Order points are multiplied by the tier held when the order was placed and,
with `pending`, become spendable after the return window; other earning events
are spendable at once. A lot expires per `expire` (never, without it). A
redemption or refund with malformed properties is refused with a reason.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo

from automation.core.ledger import Ledger, Lot, NotEnoughPoints, Txn
from automation.core.programme import EarnRule, Points

#: The event the tick records on a customer's birthday (local midnight) when the programme gives points.
BIRTHDAY_EVENT = "loyalty_birthday"


def birthday_on(birthday: dt.date, day: dt.date) -> bool:
    """Whether `day` is the birthday in its year (29 February: 28 February in other years)."""
    try:
        return birthday.replace(year=day.year) == day
    except ValueError:
        return day == dt.date(day.year, 2, 28)


class PointsRefused(ValueError):
    """An event the ledger refuses (not enough points, malformed points); it changes nothing."""


def _amount(properties: dict[str, Any], name: str) -> float | None:
    value = properties.get(name)
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return None
    return amount if math.isfinite(amount) else None


def _earned_on_day(ledger: Ledger, event: str, at: dt.datetime, zone: str | None) -> int:
    tz = ZoneInfo(zone or "UTC")
    day = at.astimezone(tz).date()
    return sum(1 for lot in ledger.lots if lot.event == event and lot.earned_at.astimezone(tz).date() == day)


def earned_lot(
    points: Points, rule: EarnRule, key: str, at: dt.datetime, properties: dict[str, Any], multiplier: float
) -> Lot:
    """The lot an earning event makes (pending only for points counted on an amount, i.e. orders)."""
    amount = _amount(properties, rule.amount_property) if rule.per_currency_unit is not None else None
    base = rule.earned(amount)
    pending = points.pending if (points.pending and rule.per_currency_unit is not None) else dt.timedelta()
    expires = points.expire.expires_at(at) if points.expire else None
    order_id = str(properties.get("order_id") or key) if rule.per_currency_unit is not None else None
    return Lot(
        key,
        at,
        int(base * multiplier),
        at + pending,
        expires,
        event=rule.event or "",
        order_id=order_id,
        amount=max(amount or 0.0, 0.0),
    )


def apply_event(
    points: Points,
    ledger: Ledger,
    event: str,
    key: str,
    at: dt.datetime,
    properties: dict[str, Any],
    multiplier: float = 1.0,
    zone: str | None = None,
) -> list[Txn]:
    """Apply one event to the ledger; `PointsRefused` (changing nothing) when it cannot be applied."""
    if event == points.redeem_event:
        wanted = properties.get("points")
        if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted <= 0:
            raise PointsRefused("properties.points must be a positive whole number of points")
        detail = str(properties.get("reward") or properties.get("order_id") or "")
        try:
            return ledger.redeem(key, wanted, at, detail)
        except NotEnoughPoints:
            raise PointsRefused("not enough points") from None
    if event == points.refund_event:
        order_id = properties.get("order_id")
        if not isinstance(order_id, str) or not order_id:
            raise PointsRefused("properties.order_id must name the refunded order")
        return ledger.refund(key, order_id, _amount(properties, "total"), at)
    if event == BIRTHDAY_EVENT:
        expires = points.expire.expires_at(at) if points.expire else None
        return ledger.earn(Lot(key, at, points.birthday_points(), at, expires, event=event))
    rule = points.rule_for(event)
    if rule is None:
        return ledger.advance(at)
    if rule.max_per_day is not None and _earned_on_day(ledger, event, at, zone) >= rule.max_per_day:
        return ledger.advance(at)
    return ledger.earn(earned_lot(points, rule, key, at, properties, multiplier))
