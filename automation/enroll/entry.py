"""Who enters each journey at `now`, and who leaves: one path for every trigger kind.

The journey's kind (`enroll.kinds`) says who is due; this module applies the
rules of entry (`enroll.policy`) and writes the enrollments with their unique
key, so running a tick twice enrolls nobody twice. On PostgreSQL a kind with a
set-based form is one `INSERT ... SELECT ... ON CONFLICT DO NOTHING`, whose
rows never leave the database; every other kind, and every kind on SQLite,
goes through the kind's candidates. Both write the same keys and contexts.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Table, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from automation.advance import wait_for
from automation.core import entry
from automation.core.journeys import Journey
from automation.core.statuses import PENDING, DeliveryStatus, EnrollmentState
from automation.enroll import lookup, policy
from automation.enroll.kind import Candidate, Scope
from automation.enroll.kinds import kind_of
from automation.store.models import Delivery, Enrollment, Event
from automation.store.sqlutil import insert_ignore

CHUNK = 5000
#: The columns an enrollment is made of, in the order the set-based statements select them.
COLUMNS = (
    "journey_id",
    "customer_id",
    "occurrence_key",
    "occurred_at",
    "entered_at",
    "state",
    "next_step_id",
    "next_at",
    "context",
)
UNIQUE = ["journey_id", "customer_id", "occurrence_key"]


def enroll_due(session: Session, journey: Journey, now: dt.datetime, scope: Scope) -> int:
    """Enroll everyone whose occurrence is due for this journey at `now`; returns how many entered."""
    kind = kind_of(journey)
    if session.get_bind().dialect.name == "postgresql" and kind.set_based:
        return enroll_set(session, journey, now, scope)
    return len(insert_enrollments(session, journey, kind.candidates(session, journey, now, scope), now))


def enroll_set(session: Session, journey: Journey, now: dt.datetime, scope: Scope) -> int:
    """PostgreSQL: enroll the kind's due statement under the policy in one INSERT; returns how many."""
    kind = kind_of(journey)
    kind.gather(session, journey, now, scope)
    due = kind.due_statement(session, journey, now, scope)
    if due is None:
        kind.after_enrolling(session, journey, now, scope, [])
        return 0
    rows = policy.under_policy(journey, lookup.in_audience(journey, due), now).subquery("rows")
    chosen = select(
        literal(journey.id),
        rows.c.customer_id,
        rows.c.occurrence_key,
        rows.c.occurred_at,
        literal(now, Enrollment.entered_at.type),
        literal(EnrollmentState.ACTIVE.value),
        literal(journey.step_ids()[0]),
        rows.c.occurred_at,
        rows.c.context,
    )
    stmt = (
        insert(cast(Table, Enrollment.__table__))
        .from_select(COLUMNS, chosen)
        .on_conflict_do_nothing(index_elements=UNIQUE)
    )
    entered = session.execute(stmt.returning(Enrollment.customer_id, Enrollment.occurrence_key)).all()
    kind.after_enrolling(session, journey, now, scope, entered)
    return len(entered)


def insert_enrollments(
    session: Session, journey: Journey, cands: Iterable[Candidate], now: dt.datetime
) -> list[int]:
    """Insert enrollments for candidates under the re-entry policy; returns the new ids."""
    batch = entry.choose(journey, cands, lambda c: c.customer_id, lambda c: c.occurred_at)
    cooling = policy.cooling(session, journey, {c.customer_id for c in batch}, now)
    batch = [c for c in batch if c.customer_id not in cooling]
    first = journey.step_ids()[0]
    new_ids: list[int] = []
    for start in range(0, len(batch), CHUNK):
        rows = [
            {
                "journey_id": journey.id,
                "customer_id": c.customer_id,
                "occurrence_key": entry.occurrence_key(journey, c.raw_key),
                "occurred_at": c.occurred_at,
                "entered_at": now,
                "state": EnrollmentState.ACTIVE,
                "next_step_id": first,
                "next_at": c.occurred_at,
                "context": c.context,
            }
            for c in batch[start : start + CHUNK]
        ]
        rows = _drop_existing(session, journey, rows)
        new_ids.extend(r.id for r in insert_ignore(session, Enrollment.__table__, rows, UNIQUE, ["id"]))
    return new_ids


def _drop_existing(session: Session, journey: Journey, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = {(r["customer_id"], r["occurrence_key"]) for r in rows}
    existing = {
        (cid, key)
        for cid, key in session.execute(
            select(Enrollment.customer_id, Enrollment.occurrence_key).where(
                Enrollment.journey_id == journey.id,
                Enrollment.customer_id.in_({k[0] for k in keys}),
            )
        ).all()
    }
    return [r for r in rows if (r["customer_id"], r["occurrence_key"]) not in existing]


def exits(session: Session, journey: Journey, now: dt.datetime) -> int:
    """End active enrollments whose customer had an exit event after the occurrence; returns how many.

    With `exit_on.match`, only an exit event with the trigger event's values of
    those properties counts (an order for this cart, not another).

    Every message of theirs still pending, whichever step made it, is skipped with
    the reason `exited: EVENT`; one already claimed is skipped by the worker, which
    judges the enrollment's state.
    """
    names = journey.exit_on.names() if journey.exit_on else []
    if not names:
        return 0
    match = journey.exit_on.match if journey.exit_on else []
    hit = (
        select(Event.name)
        .where(
            Event.customer_id == Enrollment.customer_id,
            Event.name.in_(names),
            Event.occurred_at > Enrollment.occurred_at,
            Event.occurred_at <= now,
            # `match`: the same value as the trigger event's (a missing one never matches).
            *(Event.properties[m].as_string() == Enrollment.context[("event", m)].as_string() for m in match),
        )
        .order_by(Event.occurred_at)
        .limit(1)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Enrollment.id, hit).where(
            Enrollment.journey_id == journey.id, Enrollment.state == EnrollmentState.ACTIVE, hit.is_not(None)
        )
    ).all()
    goal = journey.goal.event if journey.goal else None
    updates = [
        {
            "id": eid,
            "state": EnrollmentState.EXITED,
            "exit_reason": f"exit_on:{name}",
            "exited_at": now,
            "next_step_id": None,
            "next_at": None,
            "converted_at": now if name == goal else None,
        }
        for eid, name in rows
    ]
    if not updates:
        return 0
    session.execute(update(Enrollment), updates)
    wait_for.forget(session, [eid for eid, _ in rows])
    by_event: dict[str, list[int]] = defaultdict(list)
    for eid, name in rows:
        by_event[name].append(eid)
    for name, ids in by_event.items():
        session.execute(
            update(Delivery)
            .where(Delivery.enrollment_id.in_(ids), Delivery.status.in_(PENDING))
            .values(status=DeliveryStatus.SKIPPED, reason=f"exited: {name}", updated_at=now)
        )
    return len(updates)
