"""Trigger kind `inactivity`: no given event for N days since the last one.

Read from the per-event statistics (`customer_event_stats.last_at`, indexed),
so a tick reads the lapses that fall due, not every customer. The occurrence
is the lapse: its key is the last event's instant, its moment that instant
plus the days, so a new event and a new lapse enter again. Customers who never
had the event are not inactive. Templates get `days_inactive` and `last_event_at`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, ClassVar

from sqlalchemy import Interval, Select, func, literal, select
from sqlalchemy.orm import Session

from automation.core.journeys import InactivityTrigger, Journey
from automation.core.planner import Occurrence
from automation.enroll import policy
from automation.enroll.kind import Candidate, Found, Scope, TriggerKind
from automation.store.filter_sql import compile_filter
from automation.store.models import Customer, CustomerEventStat
from automation.store.sqlutil import iso_utc


def context(days: int, last_at: dt.datetime) -> dict[str, Any]:
    return {"days_inactive": days, "last_event_at": last_at.isoformat()}


class InactivityKind(TriggerKind[InactivityTrigger]):
    name = "inactivity"
    model = InactivityTrigger
    defaults: ClassVar[dict[str, Any]] = {"days_inactive": 0, "last_event_at": None}
    set_based = True

    def template_variables(self, context: dict[str, Any]) -> dict[str, Any]:
        found = super().template_variables(context)
        last = found["last_event_at"]
        return {**found, "last_event_at": dt.datetime.fromisoformat(last) if isinstance(last, str) else last}

    def _window(self, journey: Journey, now: dt.datetime) -> list[Any]:
        """Lapses (last event + days) in the look-back: the same window on `last_at`, shifted by the days."""
        trig = self.settings(journey)
        stat = CustomerEventStat
        lapse = dt.timedelta(days=trig.days)
        return [stat.name == trig.event, *policy.in_lookback(stat.last_at, now - lapse, trig.lookback)]

    def candidates(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope
    ) -> Iterable[Candidate]:
        trig = self.settings(journey)
        lapse = dt.timedelta(days=trig.days)
        stmt = (
            select(CustomerEventStat.customer_id, CustomerEventStat.last_at)
            .join(Customer, Customer.id == CustomerEventStat.customer_id)
            .where(*self._window(journey, now), compile_filter(journey.audience))
        )
        for cid, last_at in session.execute(stmt):
            yield Candidate(cid, last_at.isoformat(), last_at + lapse, context(trig.days, last_at))

    def due_statement(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope
    ) -> Select[Any]:
        trig = self.settings(journey)
        stat = CustomerEventStat
        key = policy.key(journey, iso_utc(stat.last_at))
        ctx = func.jsonb_build_object("days_inactive", trig.days, "last_event_at", iso_utc(stat.last_at))
        return select(
            stat.customer_id.label("customer_id"),
            key.label("occurrence_key"),
            (stat.last_at + literal(dt.timedelta(days=trig.days), Interval)).label("occurred_at"),
            ctx.label("context"),
        ).where(*self._window(journey, now), policy.not_enrolled(journey, stat.customer_id, key))

    def _last_at(self, session: Session, journey: Journey, customer: Customer) -> dt.datetime | None:
        return session.scalar(
            select(CustomerEventStat.last_at).where(
                CustomerEventStat.customer_id == customer.id,
                CustomerEventStat.name == self.settings(journey).event,
            )
        )

    def latest(
        self, session: Session, journey: Journey, customer: Customer, now: dt.datetime, scope: Scope
    ) -> Found:
        trig = self.settings(journey)
        last_at = self._last_at(session, journey, customer)
        if last_at is None:
            return Found(
                None, f"trigger not met: never had a {trig.event!r} event (who never had it is not inactive)"
            )
        lapse_at = last_at + dt.timedelta(days=trig.days)
        if lapse_at > now:
            return Found(
                None,
                f"trigger not met: last {trig.event!r} at {last_at.isoformat()}; "
                f"{trig.days} days without one are reached at {lapse_at.isoformat()}",
            )
        return Found(Occurrence(last_at.isoformat(), lapse_at, context(trig.days, last_at)))

    def preview_context(
        self, session: Session, journey: Journey, customer: Customer, now: dt.datetime, scope: Scope
    ) -> dict[str, Any]:
        """The lapse due now, else the one the last event will make."""
        last_at = self._last_at(session, journey, customer)
        if last_at is not None:
            return context(self.settings(journey).days, last_at)
        return super().preview_context(session, journey, customer, now, scope)


KIND = InactivityKind()
