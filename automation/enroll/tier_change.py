"""Trigger kind `tier_change`: a change of the `tier` trait, to given tiers and/or up or down.

Ingest records each change as a `tier_changed` event with `from` and `to`;
whether a change enters is the pure `planner.tier_change_matches`, judged
against the declared tier order. Templates get `old_tier` and `new_tier`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from sqlalchemy import Select, and_, false, func, or_
from sqlalchemy.orm import Session

from automation.core import planner
from automation.core.journeys import Journey, TierChangeTrigger
from automation.core.programme import DEFAULT_TIERS, Programme
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

    def problems(self, journey: Journey, where: Where, programme: Programme | None) -> list[str]:
        tier_order = programme.tier_order() if programme is not None else DEFAULT_TIERS
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

    def gather(self, session: Session, journey: Journey, now: dt.datetime, scope: Scope) -> None:
        """Add the unread changes past the journey's mark that match to its pending ones (`enroll.marks`).

        The planner judges each distinct (from, to) pair of them once; SQL picks their events.
        """
        trig = self.settings(journey)
        among = marks.pool(session, journey, now, scope.tier_order)
        old, new = _pair()
        fresh = marks.unread(journey, EVENT, now, trig.lookback, old.label("old"), new.label("new"))
        if among.after is not None:
            fresh = fresh.where(Event.id > among.after)
        chosen = [
            and_(old.is_(None) if a is None else old == a, new == b)
            for a, b in session.execute(fresh.distinct()).all()
            if planner.tier_change_matches(trig, a, b, scope.tier_order)
        ]
        marks.gather(session, journey, among, EVENT, now, trig.lookback, or_(false(), *chosen))

    def due_statement(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope
    ) -> Select[Any]:
        """The pending changes that have occurred, with their contexts."""
        trig = self.settings(journey)
        old, new = _pair()
        key = policy.key(journey, Event.event_key)
        return marks.pending(
            journey,
            now,
            trig.lookback,
            Event.customer_id.label("customer_id"),
            key.label("occurrence_key"),
            Event.occurred_at.label("occurred_at"),
            func.jsonb_build_object("old_tier", old, "new_tier", new).label("context"),
        )

    def after_enrolling(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope, entered: Sequence[Any]
    ) -> None:
        """Those who entered leave the pending changes; the journey's mark moves (`enroll.marks`)."""
        lookback = self.settings(journey).lookback
        among = marks.pool(session, journey, now, scope.tier_order)
        marks.keep(session, journey, now, among, lookback, scope.events_committed, entered, scope.tier_order)

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
