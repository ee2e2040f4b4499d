"""RFM scores in the database: NTILE(5) over each customer's order facts, and the segment of each cell.

Recency orders by `last_order_at`, frequency by `order_count`, monetary by
`lifetime_value`, ties broken by customer id so that a re-run gives the same
scores. Customers without an order have no scores.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from automation.core.rfm import GRID
from automation.store.models import Customer


def _quintile(column: Any) -> Any:
    return func.ntile(5).over(order_by=(column, Customer.id))


def score(s: Session) -> int:
    """Write `rfm_r`, `rfm_f`, `rfm_m` and `rfm_segment` of every customer with orders; returns how many."""
    scores = (
        select(
            Customer.id.label("id"),
            _quintile(Customer.last_order_at).label("r"),
            _quintile(Customer.order_count).label("f"),
            _quintile(Customer.lifetime_value).label("m"),
        )
        .where(Customer.order_count > 0, Customer.last_order_at.is_not(None))
        .subquery()
    )
    named = case(*((and_(scores.c.r == r, scores.c.f == f), name.value) for (r, f), name in GRID.items()))
    s.execute(
        update(Customer)
        .where(Customer.rfm_r.is_not(None), Customer.order_count == 0)
        .values(rfm_r=None, rfm_f=None, rfm_m=None, rfm_segment=None)
    )
    result = s.execute(
        update(Customer)
        .where(Customer.id == scores.c.id)
        .values(rfm_r=scores.c.r, rfm_f=scores.c.f, rfm_m=scores.c.m, rfm_segment=named)
    )
    assert isinstance(result, CursorResult)
    return int(result.rowcount or 0)
