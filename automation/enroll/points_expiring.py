"""Trigger kind `points_expiring`: loyalty points about to expire, once per expiry day.

A customer's active lots with points left are grouped by the local day they
expire; a group of at least `min_points` enters once it is `within` of its
expiry (that instant is the occurrence), so several lots expiring the same day
make one message. The occurrence key is that day. Templates get
`expiring_points` and `expiring_on` (also under `loyalty.*`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from automation.core import entry
from automation.core.journeys import Journey, PointsExpiringTrigger
from automation.core.planner import Occurrence
from automation.core.programme import Programme
from automation.enroll import lookup
from automation.enroll.kind import Candidate, Found, Scope, TriggerKind
from automation.store.models import Customer, LoyaltyLot


def context(points: int, day: dt.date) -> dict[str, Any]:
    return {"expiring_points": points, "expiring_on": day.isoformat()}


def _groups(
    session: Session,
    trig: PointsExpiringTrigger,
    until: dt.datetime,
    after: dt.datetime,
    ids: list[str] | None,
) -> Iterable[tuple[str, dt.date, int, dt.datetime]]:
    """(customer, local expiry day, points, first expiry instant) for the days whose first lot expires
    in (after, until]; a day's later lots count too, so the day is one group."""
    query = (
        select(LoyaltyLot.customer_id, Customer.timezone, LoyaltyLot.expires_at, LoyaltyLot.remaining)
        .join(Customer, Customer.id == LoyaltyLot.customer_id)
        .where(
            LoyaltyLot.active.is_(True),
            LoyaltyLot.remaining > 0,
            LoyaltyLot.expires_at > after,
            LoyaltyLot.expires_at <= until + dt.timedelta(days=1, hours=14),
        )
    )
    if ids is not None:
        query = query.where(LoyaltyLot.customer_id.in_(ids))
    points: dict[tuple[str, dt.date], int] = defaultdict(int)
    first: dict[tuple[str, dt.date], dt.datetime] = {}
    for cid, zone, expires_at, remaining in session.execute(query).all():
        assert expires_at is not None  # the query's range excludes lots that never expire
        group = (cid, expires_at.astimezone(ZoneInfo(zone or "UTC")).date())
        points[group] += remaining
        first[group] = min(expires_at, first.get(group, expires_at))
    for (cid, day), total in points.items():
        if total >= trig.min_points and first[(cid, day)] <= until:
            yield cid, day, total, first[(cid, day)]


class PointsExpiringKind(TriggerKind[PointsExpiringTrigger]):
    name = "points_expiring"
    model = PointsExpiringTrigger
    defaults: ClassVar[dict[str, Any]] = {"expiring_points": 0, "expiring_on": None}

    def lacking(self, programme: Programme | None) -> str | None:
        points = programme.points if programme is not None else None
        expiring = points is not None and points.expire is not None
        return None if expiring else "points that expire (`points.expire` in loyalty.yaml)"

    def candidates(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope
    ) -> Iterable[Candidate]:
        trig = self.settings(journey)
        start = entry.lookback_start(now, trig.lookback)
        due = [g for g in _groups(session, trig, now + trig.within, now, None) if g[3] - trig.within >= start]
        audience = lookup.members(session, journey, {g[0] for g in due})
        for cid, day, points, first in due:
            if cid in audience:
                yield Candidate(cid, day.isoformat(), first - trig.within, context(points, day))

    def latest(
        self, session: Session, journey: Journey, customer: Customer, now: dt.datetime, scope: Scope
    ) -> Found:
        trig = self.settings(journey)
        groups = sorted(_groups(session, trig, now + trig.within, now, [customer.id]), key=lambda g: g[3])
        if not groups:
            return Found(
                None, f"trigger not met: no {trig.min_points} points expiring within {trig.within.days}d"
            )
        _cid, day, points, first = groups[0]
        return Found(Occurrence(day.isoformat(), first - trig.within, context(points, day)))


KIND = PointsExpiringKind()
