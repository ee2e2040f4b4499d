"""Step kind `wait_for`: park until the customer's matching event or the deadline, then decide once.

An enrollment that reaches the step at `at` gets a row in `enrollment_waits`
(the event, the match key from its trigger event, `at` and the deadline
`at + within`) and its `next_at` becomes the deadline. When it falls due (the
deadline passed, or the early wake, `advance.wake`, made it due sooner) the
step decides by event timestamps alone (`core.waiting.decide`), reading the
events table itself: that reading is authoritative, so an early wake that was
missed only delays the decision. Once decided the row is deleted, so an event
ingested after the timeout was judged never reopens it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from automation.advance.step import Choices, JudgedKind, Judging, Reached
from automation.core.journeys import WaitForStep
from automation.core.waiting import awaited, decide, match_key
from automation.core.walk import Choice
from automation.store.models import Enrollment, EnrollmentWait, Event
from automation.store.sqlutil import insert_ignore


class WaitForKind(JudgedKind[WaitForStep]):
    name = "wait_for"
    model = WaitForStep

    def choose(self, body: WaitForStep, judging: Judging) -> Choices:
        return _choose(judging.session, judging.step_id, body, judging.reached, judging.now)

    def waits_for(self, body: WaitForStep, context: Mapping[str, Any]) -> str:
        return "for " + awaited(body.event, match_key(body.match, context.get("event") or {}))


def _choose(session: Session, step_id: str, body: WaitForStep, reached: Reached, now: dt.datetime) -> Choices:
    """Decide (or park) the enrollments at the step; their wait rows written to match."""
    ids = [eid for eid, _ in reached]
    parked = {
        w.enrollment_id: w
        for w in session.scalars(select(EnrollmentWait).where(EnrollmentWait.enrollment_id.in_(ids)))
        if w.step_id == step_id  # a row of another step is left from an edited journey: replaced
    }
    fresh = [(eid, at) for eid, at in reached if eid not in parked]
    waits = [_row(w) for w in parked.values()] + _new_rows(session, step_id, body, fresh)
    events = _events(session, body.event, waits, now)
    out: dict[int, Choice] = {}
    for w in waits:
        out[w["enrollment_id"]] = decide(
            w["match_key"], w["reached_at"], w["deadline"], now, events.get(w["customer_id"], [])
        )
    session.execute(
        delete(EnrollmentWait).where(
            EnrollmentWait.enrollment_id.in_([eid for eid in ids if eid not in parked or out[eid].path])
        )
    )
    stay = [w for w in waits if w["enrollment_id"] not in parked and out[w["enrollment_id"]].path is None]
    insert_ignore(session, EnrollmentWait.__table__, stay, ["enrollment_id"], one_statement=True)
    return out


def _row(w: EnrollmentWait) -> dict[str, Any]:
    return {c.key: getattr(w, c.key) for c in EnrollmentWait.__table__.columns}


def _new_rows(session: Session, step_id: str, body: WaitForStep, fresh: Reached) -> list[dict[str, Any]]:
    """The wait rows of enrollments that reach the step now, keyed by their trigger event's values."""
    if not fresh:
        return []
    reached_at = dict(fresh)
    rows = session.execute(
        select(Enrollment.id, Enrollment.journey_id, Enrollment.customer_id, Enrollment.context).where(
            Enrollment.id.in_(list(reached_at))
        )
    )
    return [
        {
            "enrollment_id": eid,
            "journey_id": jid,
            "step_id": step_id,
            "customer_id": cid,
            "event": body.event,
            "match_key": match_key(body.match, (context or {}).get("event") or {}),
            "reached_at": reached_at[eid],
            "deadline": reached_at[eid] + body.within,
        }
        for eid, jid, cid, context in rows
    ]


def _events(
    session: Session, name: str, waits: list[dict[str, Any]], now: dt.datetime
) -> dict[str, list[tuple[dt.datetime, dict[str, Any]]]]:
    """The awaited events of the waits' customers within the span of their windows, by customer."""
    if not waits:
        return {}
    start = min(w["reached_at"] for w in waits)
    end = min(max(w["deadline"] for w in waits), now)
    return awaited_events(session, name, {w["customer_id"] for w in waits}, start, end)


def awaited_events(
    session: Session, name: str, customers: Collection[str], start: dt.datetime, end: dt.datetime
) -> dict[str, list[tuple[dt.datetime, dict[str, Any]]]]:
    """The customers' `name` events that occurred in [start, end], (occurred_at, properties) by customer.

    Read by the (customer_id, name, occurred_at) index.
    """
    found: dict[str, list[tuple[dt.datetime, dict[str, Any]]]] = defaultdict(list)
    rows = session.execute(
        select(Event.customer_id, Event.occurred_at, Event.properties).where(
            Event.customer_id.in_(list(customers)),
            Event.name == name,
            Event.occurred_at >= start,
            Event.occurred_at <= end,
        )
    )
    for cid, at, props in rows:
        found[cid].append((at, props or {}))
    return found


def forget(session: Session, enrollment_ids: list[int]) -> None:
    """Delete the waits of these enrollments (they ended, or their step left the journey)."""
    if enrollment_ids:
        session.execute(delete(EnrollmentWait).where(EnrollmentWait.enrollment_id.in_(enrollment_ids)))


KIND = WaitForKind()
