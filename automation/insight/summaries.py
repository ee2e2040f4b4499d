"""Each customer's order summary before a cutoff, read from the order events as numpy arrays.

`frequency` is the number of repeat orders (orders after the first), `recency`
the days from the first order to the last, `T` the days from the first order to
the cutoff, `average` the mean value of all the customer's orders.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Float, cast, func, select
from sqlalchemy.orm import Session

from automation.core.clv import Array
from automation.insight.kpis import order_total_sql
from automation.store.models import Event

DAY_S = 86_400.0
CHUNK = 50_000


@dataclass(frozen=True)
class Summaries:
    ids: list[str]
    frequency: Array
    recency: Array
    T: Array
    average: Array


def _epoch_s(s: Session, col: Any) -> Any:
    """Seconds since 1970 of a UTC instant, on PostgreSQL and SQLite."""
    if s.get_bind().dialect.name == "postgresql":
        return cast(func.extract("epoch", col), Float)
    return (func.julianday(col) - 2440587.5) * DAY_S


def read(s: Session, order_event: str, cutoff: dt.datetime) -> Summaries:
    """The summary of every customer with an order before `cutoff`, in customer id order."""
    query = (
        select(
            Event.customer_id,
            func.count(),
            _epoch_s(s, func.min(Event.occurred_at)),
            _epoch_s(s, func.max(Event.occurred_at)),
            cast(func.sum(order_total_sql()), Float),
        )
        .where(Event.name == order_event, Event.occurred_at < cutoff)
        .group_by(Event.customer_id)
        .order_by(Event.customer_id)
    )
    ids: list[str] = []
    numbers: list[Array] = []
    streamed = s.execute(query, execution_options={"stream_results": True, "yield_per": CHUNK})
    for part in streamed.partitions():
        ids.extend(row[0] for row in part)
        numbers.append(np.array([row[1:] for row in part], dtype=np.float64).reshape(-1, 4))
    n, first, last, total = np.concatenate(numbers).T if numbers else np.zeros((4, 0))
    return Summaries(
        ids=ids,
        frequency=n - 1,
        recency=(last - first) / DAY_S,
        T=(cutoff.timestamp() - first) / DAY_S,
        average=total / np.maximum(n, 1),
    )


def orders_between(s: Session, order_event: str, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """Each customer's number of orders in [start, end)."""
    rows = s.execute(
        select(Event.customer_id, func.count())
        .where(Event.name == order_event, Event.occurred_at >= start, Event.occurred_at < end)
        .group_by(Event.customer_id)
    )
    return {cid: int(n) for cid, n in rows}
