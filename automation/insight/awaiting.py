"""What a customer would do at each `wait_for` of a journey at `now`, and why (`journeys explain`).

The same decision as the tick (`core.waiting.decide`) on the same rows: the
wait of the customer's latest enrollment when it is parked at the step, else
what reaching the step at `now` would wait for.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from automation.advance.wait_for import awaited_events
from automation.core.durations import format_duration
from automation.core.journeys import Journey
from automation.core.waiting import HAPPENED, awaited, decide, match_key
from automation.store.models import Customer, Enrollment, EnrollmentWait


def wait_for_lines(session: Session, journey: Journey, c: Customer, now: dt.datetime) -> list[str]:
    """One line per `wait_for` step: happened, timed out or still waiting at `now`, with the instants."""
    latest = session.scalar(
        select(Enrollment)
        .where(Enrollment.journey_id == journey.id, Enrollment.customer_id == c.id)
        .order_by(Enrollment.entered_at.desc(), Enrollment.id.desc())
        .limit(1)
    )
    wait = session.get(EnrollmentWait, latest.id) if latest is not None else None
    trigger = ((latest.context if latest is not None else None) or {}).get("event") or {}
    out = []
    for placed in journey.placed.values():
        body = placed.step.wait_for
        if body is None:
            continue
        if wait is None or wait.step_id != placed.id:
            what = awaited(body.event, match_key(body.match, trigger))
            out.append(
                f"wait_for {placed.id}: not waiting there now; once reached, waits up to "
                f"{format_duration(body.within)} for {what}"
            )
            continue
        events = awaited_events(session, body.event, [c.id], wait.reached_at, min(wait.deadline, now))
        choice = decide(wait.match_key, wait.reached_at, wait.deadline, now, events.get(c.id, []))
        head, what = f"wait_for {placed.id} at {now.isoformat()}", awaited(body.event, wait.match_key)
        if choice.path is None:
            out.append(f"{head}: still waiting for {what} until {wait.deadline.isoformat()}")
        elif choice.path == HAPPENED:
            out.append(f"{head}: happened ({body.event} at {choice.at.isoformat()})")
        else:
            since = f"between {wait.reached_at.isoformat()} and {wait.deadline.isoformat()}"
            out.append(f"{head}: timed_out (no {what} {since})")
    return out
