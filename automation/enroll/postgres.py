"""Enrolling event, tier-change and inactivity triggers on PostgreSQL in one statement each.

The same rules as `enroll.candidates` + `enroll.insert_enrollments`, but the
rows never leave the database: one `INSERT ... SELECT ... ON CONFLICT DO
NOTHING` per journey reads the due occurrences by index, applies the look-back,
the audience (a primary-key lookup per occurrence not yet enrolled, so no plan
can turn it into a scan of every customer) and the re-entry policy, and writes
the enrollments with the same occurrence key and context the Python path builds. Whether a tier
change enters is still the planner's call, made once per distinct (from, to)
pair found in the window.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Interval,
    Select,
    String,
    Table,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Session

from automation.core import planner
from automation.core.journeys import Cooldown, Journey
from automation.core.statuses import EnrollmentState
from automation.store.filter_sql import compile_filter
from automation.store.models import Customer, CustomerEventStat, Enrollment, Event

KINDS = ("event", "tier_change", "inactivity")
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


def iso_utc(instant: Any) -> ColumnElement[str]:
    """A timestamp as Python's `isoformat()` of an aware UTC datetime writes it.

    Occurrence keys and contexts hold such text; the Python path, `explain` and
    enrollments made before must agree with what SQL writes, to the character.
    """
    utc = func.timezone("UTC", instant)
    fraction = case(
        (func.date_trunc("second", instant) == instant, literal("")),
        else_=func.to_char(utc, ".US", type_=String),
    )
    return func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS', type_=String) + fraction + literal("+00:00")


def _json(value: Any) -> Any:
    return func.cast(literal(json.dumps(value)), JSONB)


def _in_audience(journey: Journey, due: Select[Any]) -> Select[Any]:
    """The due occurrences whose customer exists and is in the audience, checked last.

    The audience is a scalar subquery per occurrence, which PostgreSQL runs by
    primary key and never turns into a join over every customer. OFFSET 0 keeps
    it out of the occurrences' scan: most occurrences an idle tick reads are
    already enrolled, and only the others need their customer looked up.
    """
    rows = due.offset(0).subquery("due")
    member = select(compile_filter(journey.audience)).where(Customer.id == rows.c.customer_id)
    return select(rows).where(func.coalesce(member.scalar_subquery(), false()))


def _not_enrolled(journey: Journey, customer_id: Any, key: Any) -> ColumnElement[bool]:
    return ~exists().where(
        Enrollment.journey_id == journey.id,
        Enrollment.customer_id == customer_id,
        Enrollment.occurrence_key == key,
    )


def _key(journey: Journey, raw: Any) -> Any:
    return literal(planner.occurrence_key(journey, "")) if journey.re_entry == "once" else raw


def _recent(name: str, lookback: dt.timedelta, now: dt.datetime) -> list[ColumnElement[bool]]:
    return [Event.name == name, Event.occurred_at > now - lookback, Event.occurred_at <= now]


def _event_due(journey: Journey, now: dt.datetime) -> Select[Any]:
    trig = journey.trigger.event
    assert trig is not None
    props = func.coalesce(Event.properties, func.cast(literal("{}"), JSONB))
    where = [func.coalesce(props.op("->")(k), _json(None)) == _json(v) for k, v in (trig.where or {}).items()]
    context = func.jsonb_build_object(
        "event",
        props.op("||")(
            func.jsonb_build_object("name", Event.name, "occurred_at", iso_utc(Event.occurred_at))
        ),
    )
    key = _key(journey, Event.event_key)
    return select(
        Event.customer_id.label("customer_id"),
        key.label("occurrence_key"),
        Event.occurred_at.label("occurred_at"),
        context.label("context"),
    ).where(
        *_recent(trig.name, trig.lookback, now),
        *where,
        _not_enrolled(journey, Event.customer_id, key),
    )


def _tier_due(
    session: Session, journey: Journey, now: dt.datetime, order: tuple[str, ...]
) -> Select[Any] | None:
    trig = journey.trigger.tier_change
    assert trig is not None
    old, new = Event.properties.op("->>")("from"), Event.properties.op("->>")("to")
    window = _recent("tier_changed", trig.lookback, now)
    pairs = session.execute(select(old, new).where(*window).distinct()).all()
    chosen = [
        and_(old.is_(None) if a is None else old == a, new == b)
        for a, b in pairs
        if planner.tier_change_matches(trig, a, b, order)
    ]
    if not chosen:
        return None
    key = _key(journey, Event.event_key)
    return select(
        Event.customer_id.label("customer_id"),
        key.label("occurrence_key"),
        Event.occurred_at.label("occurred_at"),
        func.jsonb_build_object("old_tier", old, "new_tier", new).label("context"),
    ).where(
        *window,
        or_(*chosen),
        _not_enrolled(journey, Event.customer_id, key),
    )


def _inactivity_due(journey: Journey, now: dt.datetime) -> Select[Any]:
    trig = journey.trigger.inactivity
    assert trig is not None
    lapse = dt.timedelta(days=trig.days)
    stat = CustomerEventStat
    key = _key(journey, iso_utc(stat.last_at))
    context = func.jsonb_build_object("days_inactive", trig.days, "last_event_at", iso_utc(stat.last_at))
    return select(
        stat.customer_id.label("customer_id"),
        key.label("occurrence_key"),
        (stat.last_at + literal(lapse, Interval)).label("occurred_at"),
        context.label("context"),
    ).where(
        stat.name == trig.event,
        stat.last_at <= now - lapse,
        stat.last_at > now - lapse - trig.lookback,
        _not_enrolled(journey, stat.customer_id, key),
    )


def _under_policy(journey: Journey, due: Select[Any], now: dt.datetime) -> Select[Any]:
    """One row per customer under `once` (the first) and cool-down (the latest, if cooled down)."""
    cooldown = journey.re_entry.cooldown if isinstance(journey.re_entry, Cooldown) else None
    if journey.re_entry != "once" and cooldown is None:
        return due
    occurred_at = due.selected_columns.occurred_at
    rank = func.row_number().over(
        partition_by=due.selected_columns.customer_id,
        order_by=occurred_at.desc() if cooldown is not None else occurred_at,
    )
    ranked = due.add_columns(rank.label("rank")).subquery("ranked")
    picked = select(
        ranked.c.customer_id, ranked.c.occurrence_key, ranked.c.occurred_at, ranked.c.context
    ).where(ranked.c.rank == 1)
    if cooldown is None:
        return picked
    return picked.where(
        ~exists().where(
            Enrollment.journey_id == journey.id,
            Enrollment.customer_id == ranked.c.customer_id,
            Enrollment.entered_at > now - cooldown,
        )
    )


def enroll_due(session: Session, journey: Journey, now: dt.datetime, tier_order: tuple[str, ...]) -> int:
    """Enroll everyone whose occurrence is due for this journey at `now`; returns how many entered."""
    kind = journey.trigger.kind
    due: Select[Any] | None
    if kind == "event":
        due = _event_due(journey, now)
    elif kind == "tier_change":
        due = _tier_due(session, journey, now, tier_order)
    elif kind == "inactivity":
        due = _inactivity_due(journey, now)
    else:
        raise ValueError(f"{kind} triggers are enrolled by enroll.candidates")
    if due is None:
        return 0
    rows = _under_policy(journey, _in_audience(journey, due), now).subquery("rows")
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
        .on_conflict_do_nothing(index_elements=["journey_id", "customer_id", "occurrence_key"])
    )
    inserted = stmt.returning(Enrollment.id).cte("inserted")
    return int(session.scalar(select(func.count()).select_from(inserted)) or 0)
