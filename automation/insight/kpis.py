"""`automation kpis`: the counts behind the loyalty KPIs, in SQL over orders and enrollments.

Orders are the events named AUTOMATION_ORDER_EVENT; an order's value is its
numeric `total` (else `value`, else `revenue`), as ingest reads it. The ratios
are `automation.core.kpis`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, select
from sqlalchemy.orm import Session

from automation.core.assignment import in_global_control
from automation.core.kpis import Counts, Lift
from automation.store.filter_sql import json_typed
from automation.store.models import Customer, Enrollment, Event

#: `automation kpis` without --since: the year before --until; without --active-window: 180 days.
DEFAULT_PERIOD = dt.timedelta(days=365)
DEFAULT_WINDOW = "180d"


def order_total_sql() -> Any:
    """An order event's value in SQL: its numeric `total`, `value` or `revenue`, else 0."""
    keys = ("total", "value", "revenue")
    return func.coalesce(*(json_typed(k, "number", Event.properties) for k in keys), 0.0)


def _flag(condition: Any) -> Any:
    return case((condition, 1), else_=0)


def _per_customer(order_event: str, since: dt.datetime, until: dt.datetime, window: dt.timedelta) -> Any:
    """One row per customer with an order before `until`: what the KPIs count of them."""
    at, total = Event.occurred_at, order_total_sql()
    in_period = and_(at >= since, at < until)
    return (
        select(
            Event.customer_id.label("customer_id"),
            func.min(at).label("first_at"),
            func.sum(_flag(in_period)).label("orders"),
            func.sum(case((in_period, total), else_=0.0)).label("revenue"),
            func.sum(total).label("lifetime_revenue"),
            func.max(_flag(and_(at >= since - window, at < since))).label("active_at_start"),
            func.max(_flag(at >= until - window)).label("active_at_end"),
        )
        .where(Event.name == order_event, at < until)
        .group_by(Event.customer_id)
        .subquery()
    )


def _conversions(s: Session, order_event: str, since: dt.datetime, until: dt.datetime) -> tuple[int, float]:
    """Enrollments converted in the period, and the total of each one's first order after entry."""
    first_order = (
        select(order_total_sql())
        .where(
            Event.customer_id == Enrollment.customer_id,
            Event.name == order_event,
            Event.occurred_at > Enrollment.occurred_at,
            Event.occurred_at <= Enrollment.converted_at,
        )
        .order_by(Event.occurred_at)
        .limit(1)
        .scalar_subquery()
    )
    row = s.execute(
        select(func.count(), func.sum(first_order)).where(
            Enrollment.converted_at >= since, Enrollment.converted_at < until
        )
    ).one()
    return int(row[0]), float(row[1] or 0)


def counts(
    s: Session, order_event: str, since: dt.datetime, until: dt.datetime, window: dt.timedelta
) -> Counts:
    """Everything `automation.core.kpis.kpis` divides, for the period [since, until)."""
    c = _per_customer(order_event, since, until, window)
    row = s.execute(
        select(
            func.count(),
            func.sum(_flag(and_(c.c.first_at >= since, c.c.first_at < until))),
            func.sum(c.c.active_at_end),
            func.sum(_flag(c.c.orders >= 1)),
            func.sum(_flag(c.c.orders >= 2)),
            func.sum(c.c.active_at_start),
            func.sum(_flag(and_(c.c.active_at_start == 1, c.c.active_at_end == 1))),
            func.sum(c.c.orders),
            func.sum(cast(c.c.revenue, Float)),
            func.sum(cast(c.c.lifetime_revenue, Float)),
        )
    ).one()
    customers = s.scalar(select(func.count()).select_from(Customer).where(Customer.created_at < until))
    conversions, attributed = _conversions(s, order_event, since, until)
    ints = [int(v or 0) for v in row[:8]]
    return Counts(
        customers=int(customers or 0),
        buyers_ever=ints[0],
        new_customers=ints[1],
        active=ints[2],
        buyers=ints[3],
        repeat_buyers=ints[4],
        active_at_start=ints[5],
        retained=ints[6],
        orders=ints[7],
        revenue=float(row[8] or 0),
        lifetime_revenue=float(row[9] or 0),
        conversions=conversions,
        attributed_revenue=attributed,
    )


def lift(s: Session, order_event: str, since: dt.datetime, until: dt.datetime, pct: float) -> Lift | None:
    """Revenue and buyers in the period, global control group against everyone else; None at 0%."""
    if pct <= 0:
        return None
    orders = (
        select(Event.customer_id, func.sum(order_total_sql()).label("revenue"))
        .where(Event.name == order_event, Event.occurred_at >= since, Event.occurred_at < until)
        .group_by(Event.customer_id)
        .subquery()
    )
    rows: Iterable[Any] = s.execute(
        select(Customer.id, orders.c.revenue)
        .outerjoin(orders, orders.c.customer_id == Customer.id)
        .where(Customer.created_at < until)
    )
    tally = {True: [0, 0, 0.0], False: [0, 0, 0.0]}
    for customer_id, revenue in rows:
        group = tally[in_global_control(customer_id, pct)]
        group[0] += 1
        group[1] += revenue is not None
        group[2] += float(revenue or 0)
    (cn, cb, cr), (pn, pb, pr) = tally[True], tally[False]
    return Lift(int(cn), int(cb), float(cr), int(pn), int(pb), float(pr))


Cohorts = tuple[list[tuple[str, str, int]], dict[str, int]]


def cohorts(s: Session, order_event: str, until: dt.datetime) -> Cohorts:
    """Per first-order month: its size, and how many of it ordered in each later month."""
    month = _month(s, Event.occurred_at)
    first = (
        select(Event.customer_id, func.min(Event.occurred_at).label("first_at"))
        .where(Event.name == order_event, Event.occurred_at < until)
        .group_by(Event.customer_id)
        .subquery()
    )
    cohort = _month(s, first.c.first_at)
    active = s.execute(
        select(cohort, month, func.count(func.distinct(Event.customer_id)))
        .join(first, first.c.customer_id == Event.customer_id)
        .where(Event.name == order_event, Event.occurred_at < until)
        .group_by(cohort, month)
    ).all()
    sizes = s.execute(select(cohort, func.count()).group_by(cohort)).all()
    return [(str(c), str(m), int(n)) for c, m, n in active], {str(k): int(v) for k, v in sizes}


def _month(s: Session, col: Any) -> Any:
    """`YYYY-MM` of a UTC instant, on PostgreSQL and SQLite."""
    if s.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", col), "YYYY-MM")
    return func.strftime("%Y-%m", col)
