"""Trigger kind `tier_change`: a change of the `tier` trait, to given tiers and/or up or down.

Ingest records each change as a `tier_changed` event with `from` and `to`;
whether a change enters is the pure `planner.tier_change_matches`, judged
against the declared tier order. Templates get `old_tier` and `new_tier`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select
from sqlalchemy.orm import Session

from automation.core import planner
from automation.core.journeys import Journey, TierChangeTrigger
from automation.enroll import lookup, marks, policy
from automation.enroll.kind import Candidate, Found, Scope, TriggerKind, Where
from automation.store.models import Customer, Event

EVENT = "tier_changed"


def context(old: str | None, new: str | None) -> dict[str, Any]:
    return {"old_tier": old, "new_tier": new}


def _pair() -> tuple[Any, Any]:
    """A tier change's `from` and `to`, as SQL."""
    return Event.properties.op("->>")("from"), Event.properties.op("->>")("to")


class TierChangeKind(TriggerKind[TierChangeTrigger]):
    name = "tier_change"
    model = TierChangeTrigger
    defaults: ClassVar[dict[str, Any]] = {"old_tier": None, "new_tier": None}
    set_based = True

    def problems(self, journey: Journey, where: Where, tier_order: tuple[str, ...]) -> list[str]:
        return [
            f"{where('trigger', 'tier_change', 'to')}: unknown tier {tier!r} (tiers: {', '.join(tier_order)})"
            for tier in self.settings(journey).to or []
            if tier not in tier_order
        ]

    def candidates(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope
    ) -> Iterable[Candidate]:
        trig = self.settings(journey)
        for cid, key, at, _name, props in lookup.recent_events(session, journey, EVENT, trig.lookback, now):
            old, new = (props or {}).get("from"), (props or {}).get("to")
            if planner.tier_change_matches(trig, old, new, scope.tier_order):
                yield Candidate(cid, key, at, context(old, new))

    def due_statement(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope
    ) -> Select[Any] | None:
        """The planner judges each distinct (from, to) pair of the unread events once; SQL picks them.

        The events read are those of the journey's pool (`enroll.marks`), not the whole look-back.
        """
        among = marks.pool(session, journey, now, self._rules(scope))
        chosen = self._chosen(session, journey, now, scope, among)
        if chosen is None:
            return None
        old, new = _pair()
        key = policy.key(journey, Event.event_key)
        due = self._unread(
            journey,
            now,
            Event.customer_id.label("customer_id"),
            key.label("occurrence_key"),
            Event.occurred_at.label("occurred_at"),
            func.jsonb_build_object("old_tier", old, "new_tier", new).label("context"),
        ).where(Event.occurred_at <= now, chosen)
        return marks.read(due, journey, among)

    def after_enrolling(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope, added: int
    ) -> None:
        """Keep the unread changes that match, and move the journey's mark (`enroll.marks`)."""
        rules = self._rules(scope)
        among = marks.pool(session, journey, now, rules)
        chosen = self._chosen(session, journey, now, scope, among)
        unread = self._unread(journey, now, Event.id, Event.occurred_at).where(
            false() if chosen is None else chosen
        )
        lookback = self.settings(journey).lookback
        marks.keep(session, journey, now, among, unread, lookback, scope.events_committed, added, rules)

    def _chosen(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope, among: marks.Pool
    ) -> ColumnElement[bool] | None:
        """Which of the pool's unread changes match (those not yet occurred too), as SQL on their
        (from, to); None when none does."""
        trig = self.settings(journey)
        old, new = _pair()
        unread = self._unread(journey, now, old.label("old"), new.label("new"))
        pairs = session.execute(marks.read(unread, journey, among).distinct()).all()
        chosen = [
            and_(old.is_(None) if a is None else old == a, new == b)
            for a, b in pairs
            if planner.tier_change_matches(trig, a, b, scope.tier_order)
        ]
        return or_(*chosen) if chosen else None

    def _unread(self, journey: Journey, now: dt.datetime, *columns: Any) -> Select[Any]:
        """The journey's tier changes not yet enrolled, from the look-back's start on."""
        return select(*columns).where(
            Event.name == EVENT,
            policy.since_lookback_start(Event.occurred_at, now, self.settings(journey).lookback),
            policy.not_enrolled(journey, Event.customer_id, policy.key(journey, Event.event_key)),
        )

    @staticmethod
    def _rules(scope: Scope) -> tuple[str, ...]:
        """Beyond the journey, the tier order decides which changes enter."""
        return scope.tier_order

    def latest(
        self, session: Session, journey: Journey, customer: Customer, now: dt.datetime, scope: Scope
    ) -> Found:
        trig = self.settings(journey)
        for key, at, props in lookup.latest_events(session, customer.id, EVENT, now):
            old, new = (props or {}).get("from"), (props or {}).get("to")
            if planner.tier_change_matches(trig, old, new, scope.tier_order):
                return Found(planner.Occurrence(key, at, context(old, new)))
        wanted = [f"direction {trig.direction}"] + ([f"to {', '.join(trig.to)}"] if trig.to else [])
        return Found(None, f"trigger not met: no tier change ({'; '.join(wanted)}) at or before now")

    def preview_context(
        self, session: Session, journey: Journey, customer: Customer, now: dt.datetime, scope: Scope
    ) -> dict[str, Any]:
        """The latest matching change, else a plausible one: from the tier below to the current one."""
        if not customer.tier:
            return super().preview_context(session, journey, customer, now, scope)
        found = self.latest(session, journey, customer, now, scope)
        if found.occurrence is not None:
            return found.occurrence.context
        order = list(scope.tier_order)
        below = order[order.index(customer.tier) - 1] if customer.tier in order[1:] else None
        return context(below, customer.tier)


KIND = TierChangeKind()
