"""Trigger kind `event`: each occurrence of a named event (optionally matching properties) enters.

The occurrence key is the event's key and the occurrence instant its
timestamp, so the steps' waits count from the event itself. Templates get
`event` (its properties, `name` and `occurred_at`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
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


def _props() -> Any:
    """The event's properties, `{}` when it has none."""
    return func.coalesce(Event.properties, func.cast(literal("{}"), JSONB))


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

    def gather(self, session: Session, journey: Journey, now: dt.datetime, scope: Scope) -> None:
        """Add the unread events past the journey's mark to its pending ones (`enroll.marks`).

        An event its `where` turns away never enters (its properties never change): not kept.
        """
        trig = self.settings(journey)
        among = marks.pool(session, journey, now)
        marks.gather(session, journey, among, trig.name, now, trig.lookback, *_matching(trig, _props()))

    def due_statement(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope
    ) -> Select[Any]:
        """The pending events that have occurred, with their contexts."""
        trig = self.settings(journey)
        columns = (Event.customer_id, Event.event_key, Event.occurred_at, _props().label("properties"))
        fresh = marks.pending(journey, now, trig.lookback, *columns).subquery("fresh")
        ctx = func.jsonb_build_object(
            "event",
            fresh.c.properties.op("||")(
                func.jsonb_build_object(
                    "name", literal(trig.name), "occurred_at", iso_utc(fresh.c.occurred_at)
                )
            ),
        )
        return select(
            fresh.c.customer_id.label("customer_id"),
            policy.key(journey, fresh.c.event_key).label("occurrence_key"),
            fresh.c.occurred_at.label("occurred_at"),
            ctx.label("context"),
        )

    def after_enrolling(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope, entered: Sequence[Any]
    ) -> None:
        """Those who entered leave the pending events; the journey's mark moves (`enroll.marks`)."""
        lookback = self.settings(journey).lookback
        among = marks.pool(session, journey, now)
        marks.keep(session, journey, now, among, lookback, scope.events_committed, entered)

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
