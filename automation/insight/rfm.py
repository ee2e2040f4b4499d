"""RFM scores in the database: NTILE(5) over each customer's order facts, and the segment of each cell.

Recency orders by `last_order_at`, frequency by `order_count`, monetary by
`lifetime_value`, ties broken by customer id so that a re-run gives the same
scores. Customers without an order have no scores.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Subquery, and_, case, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from automation.core.rfm import GRID
from automation.store.models import Customer

#: The customers who get scores: those with an order.
SCORED = and_(Customer.order_count > 0, Customer.last_order_at.is_not(None))


def _quintile(column: Any) -> Any:
    return func.ntile(5).over(order_by=(column, Customer.id))


def scores() -> Subquery:
    """(id, r, f, m) of every scored customer."""
    return (
        select(
            Customer.id.label("id"),
            _quintile(Customer.last_order_at).label("r"),
            _quintile(Customer.order_count).label("f"),
            _quintile(Customer.lifetime_value).label("m"),
        )
        .where(SCORED)
        .subquery()
    )


def segment(r: Any, f: Any) -> ColumnElement[Any]:
    """The segment named for the (r, f) cell (`core.rfm.GRID`)."""
    return case(*((and_(r == rr, f == ff), name.value) for (rr, ff), name in GRID.items()))


def score(s: Session) -> int:
    """Write `rfm_r`, `rfm_f`, `rfm_m` and `rfm_segment` of every customer with orders; returns how many."""
    found = scores()
    s.execute(
        update(Customer)
        .execution_options(synchronize_session=False)
        .where(Customer.rfm_r.is_not(None), ~SCORED)
        .values(rfm_r=None, rfm_f=None, rfm_m=None, rfm_segment=None)
    )
    result = s.execute(  # unsynchronised: no id of the million fetched back
        update(Customer)
        .execution_options(synchronize_session=False)
        .where(Customer.id == found.c.id)
        .values(rfm_r=found.c.r, rfm_f=found.c.f, rfm_m=found.c.m, rfm_segment=segment(found.c.r, found.c.f))
    )
    assert isinstance(result, CursorResult)
    return int(result.rowcount or 0)
