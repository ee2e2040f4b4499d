"""The time zones customers are in, read by a skip scan of the timezone index.

One index descent per distinct zone (a few dozen), whatever the number of
customers: what the anniversary lookup needs to know which days to read in
which zone. NULL (the default zone) is not listed.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from automation.store.models import Customer


def present(session: Session) -> list[str]:
    """Every distinct non-NULL `customers.timezone`, in order."""
    tz = Customer.__table__.c.timezone
    zones = select(func.min(tz).label("tz")).cte("zones", recursive=True)
    following = select(select(func.min(tz)).where(tz > zones.c.tz).scalar_subquery())
    zones = zones.union_all(following.where(zones.c.tz.is_not(None)))
    return [z for z in session.scalars(select(zones.c.tz)) if z is not None]
