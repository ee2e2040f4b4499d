"""Indexed reads several trigger kinds share: events in the look-back, the audience by primary key.

The audience is checked after the occurrences are found, one primary-key
lookup per customer: joining customers into the occurrences' query lets
PostgreSQL's estimate flip the plan to a sequential scan of every customer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, select
from sqlalchemy.orm import Session

from automation.core.journeys import Journey
from automation.enroll import policy
from automation.store.filter_sql import compile_filter
from automation.store.models import Customer, Event

CHUNK = 5000


def members(session: Session, journey: Journey, customer_ids: set[str]) -> set[str]:
    """The given customers that exist and match the journey's audience."""
    ids = sorted(customer_ids)
    found: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        found.update(
            session.scalars(
                select(Customer.id).where(
                    Customer.id.in_(ids[start : start + CHUNK]), compile_filter(journey.audience)
                )
            )
        )
    return found


def in_audience(journey: Journey, due: Select[Any]) -> Select[Any]:
    """The due rows whose customer exists and is in the audience, checked last, in SQL.

    The audience is a scalar subquery per row, which PostgreSQL runs by primary
    key and never turns into a join over every customer. OFFSET 0 keeps it out
    of the occurrences' scan: most occurrences an idle tick reads are already
    enrolled, and only the others need their customer looked up.
    """
    rows = due.offset(0).subquery("due")
    return select(rows).where(member(journey, rows.c.customer_id))


def member(journey: Journey, customer_id: Any) -> ColumnElement[bool]:
    """The customer `customer_id` exists and is in the journey's audience: one primary-key lookup."""
    found = select(compile_filter(journey.audience)).where(Customer.id == customer_id).scalar_subquery()
    return func.coalesce(found, false())


def recent_events(
    session: Session, journey: Journey, name: str, lookback: dt.timedelta, now: dt.datetime
) -> list[Any]:
    """Events of `name` in the look-back, not yet enrolled, of customers in the audience, oldest first.

    Rows of (customer_id, event_key, occurred_at, name, properties).
    """
    stmt = (
        select(Event.customer_id, Event.event_key, Event.occurred_at, Event.name, Event.properties)
        .where(
            Event.name == name,
            *policy.in_lookback(Event.occurred_at, now, lookback),
            policy.not_enrolled(journey, Event.customer_id, policy.key(journey, Event.event_key)),
        )
        .order_by(Event.occurred_at)
    )
    rows = list(session.execute(stmt))
    audience = members(session, journey, {r[0] for r in rows})
    return [r for r in rows if r[0] in audience]


def latest_events(session: Session, customer_id: str, name: str, now: dt.datetime) -> list[Any]:
    """A customer's events of `name` up to `now`, newest first: (event_key, occurred_at, properties)."""
    return list(
        session.execute(
            select(Event.event_key, Event.occurred_at, Event.properties)
            .where(Event.customer_id == customer_id, Event.name == name, Event.occurred_at <= now)
            .order_by(Event.occurred_at.desc())
        )
    )
