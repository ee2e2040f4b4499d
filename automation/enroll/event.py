"""Trigger kind `event`: each occurrence of a named event (optionally matching properties) enters.

The occurrence key is the event's key and the occurrence instant its
timestamp, so the steps' waits count from the event itself. Templates get
`event` (its properties, `name` and `occurred_at`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any, ClassVar

from sqlalchemy import Select, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from automation.core.journeys import EventTrigger, Journey
from automation.core.planner import Occurrence
from automation.enroll import lookup, marks, policy
from automation.enroll.kind import Candidate, Found, Scope, TriggerKind
from automation.store.models import Customer, Event
from automation.store.sqlutil import iso_utc


def matches(trigger: EventTrigger, properties: dict[str, Any]) -> bool:
    """Whether an event's properties satisfy the trigger's `where`."""
    return not trigger.where or all(properties.get(k) == v for k, v in trigger.where.items())


def context(name: str, properties: dict[str, Any], at: dt.datetime) -> dict[str, Any]:
    """The enrollment context: the event's properties with its name and instant."""
    return {"event": {**properties, "name": name, "occurred_at": at.isoformat()}}


def _json(value: Any) -> Any:
    return func.cast(literal(json.dumps(value)), JSONB)


def _matching(trigger: EventTrigger, props: Any) -> list[Any]:
    """SQL of `matches`: the event's properties `props` satisfy the trigger's `where`."""
    return [
        func.coalesce(props.op("->")(k), _json(None)) == _json(v) for k, v in (trigger.where or {}).items()
    ]


class EventKind(TriggerKind[EventTrigger]):
    name = "event"
    model = EventTrigger
    defaults: ClassVar[dict[str, Any]] = {"event": {}}
    set_based = True

    def candidates(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope
    ) -> Iterable[Candidate]:
        trig = self.settings(journey)
        for cid, key, at, name, props in lookup.recent_events(
            session, journey, trig.name, trig.lookback, now
        ):
            if matches(trig, props or {}):
                yield Candidate(cid, key, at, context(name, props or {}, at))

    def due_statement(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope
    ) -> Select[Any]:
        trig = self.settings(journey)
        unread = self._unread(journey, now, Event.customer_id, Event.event_key, Event.occurred_at, Event.name)
        among = marks.read(unread.where(Event.occurred_at <= now), journey, marks.pool(session, journey, now))
        # OFFSET 0 keeps it a plan of its own: the table is read only for the properties of what it returns.
        fresh = among.offset(0).subquery("fresh")
        # Read by key for each event not yet enrolled: none, on an idle tick.
        stored = select(Event.properties).where(Event.event_key == fresh.c.event_key).scalar_subquery()
        props = func.coalesce(stored, func.cast(literal("{}"), JSONB))
        where = _matching(trig, props)
        ctx = func.jsonb_build_object(
            "event",
            props.op("||")(
                func.jsonb_build_object("name", fresh.c.name, "occurred_at", iso_utc(fresh.c.occurred_at))
            ),
        )
        return select(
            fresh.c.customer_id.label("customer_id"),
            policy.key(journey, fresh.c.event_key).label("occurrence_key"),
            fresh.c.occurred_at.label("occurred_at"),
            ctx.label("context"),
        ).where(*where)

    def after_enrolling(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope, added: int
    ) -> None:
        """Keep the events read and not enrolled, and move the journey's mark (`enroll.marks`)."""
        trig = self.settings(journey)
        among = marks.pool(session, journey, now)
        # An event its `where` turns away never enters (its properties never change): not kept.
        props = func.coalesce(Event.properties, func.cast(literal("{}"), JSONB))
        unread = self._unread(journey, now, Event.id, Event.occurred_at).where(*_matching(trig, props))
        marks.keep(session, journey, now, among, unread, trig.lookback, scope.events_committed, added)

    def _unread(self, journey: Journey, now: dt.datetime, *columns: Any) -> Select[Any]:
        """The journey's events not yet enrolled, from the look-back's start on; on the covering index."""
        trig = self.settings(journey)
        return select(*columns).where(
            Event.name == trig.name,
            policy.since_lookback_start(Event.occurred_at, now, trig.lookback),
            policy.not_enrolled(journey, Event.customer_id, policy.key(journey, Event.event_key)),
        )

    def latest(
        self, session: Session, journey: Journey, customer: Customer, now: dt.datetime, scope: Scope
    ) -> Found:
        trig = self.settings(journey)
        for key, at, props in lookup.latest_events(session, customer.id, trig.name, now):
            if matches(trig, props or {}):
                return Found(Occurrence(key, at, context(trig.name, props or {}, at)))
        where = f" matching {trig.where}" if trig.where else ""
        return Found(None, f"trigger not met: no {trig.name!r} event{where} at or before now")


KIND = EventKind()
