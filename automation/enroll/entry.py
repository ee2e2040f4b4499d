"""Who enters each journey at `now`: indexed candidate queries, pure decisions, bulk insert.

Each trigger kind narrows candidates with an indexed query (events by name and
time, event statistics by last time, anniversaries by month and day), the pure
planner makes the exact call in the customer's time zone, and enrollments are
inserted with their unique key, so running this twice enrolls nobody twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, exists, func, literal, select, update
from sqlalchemy.orm import Session

from automation.core import planner
from automation.core.journeys import Cooldown, Journey
from automation.core.records import parse_date
from automation.core.statuses import EnrollmentState
from automation.definitions.catalog import Catalog
from automation.enroll import postgres as enroll_pg
from automation.store.filter_sql import compile_filter
from automation.store.models import Customer, CustomerEventStat, Enrollment, Event
from automation.store.sqlutil import insert_ignore

CHUNK = 5000


@dataclass(frozen=True)
class Candidate:
    customer_id: str
    raw_key: str
    occurred_at: dt.datetime
    context: dict[str, Any]


def _not_enrolled(journey: Journey, customer_col: Any, key: ColumnElement[Any]) -> ColumnElement[bool]:
    return ~exists().where(
        Enrollment.journey_id == journey.id,
        Enrollment.customer_id == customer_col,
        Enrollment.occurrence_key == key,
    )


def _key_expr(journey: Journey, natural: Any) -> Any:
    return literal("once") if journey.re_entry == "once" else natural


def _recent_events(
    session: Session, journey: Journey, name: str, lookback: dt.timedelta, now: dt.datetime
) -> list[Any]:
    """Events of `name` in the look-back not yet enrolled, read from the events index alone.

    The audience is checked afterwards by primary key (`_in_audience`): joining customers here
    lets PostgreSQL's estimate flip the plan to a sequential scan of every customer.
    """
    stmt = (
        select(Event.customer_id, Event.event_key, Event.occurred_at, Event.name, Event.properties)
        .where(
            Event.name == name,
            Event.occurred_at > now - lookback,
            Event.occurred_at <= now,
            _not_enrolled(journey, Event.customer_id, _key_expr(journey, Event.event_key)),
        )
        .order_by(Event.occurred_at)
    )
    rows = list(session.execute(stmt))
    members = _in_audience(session, journey, {r[0] for r in rows})
    return [r for r in rows if r[0] in members]


def _in_audience(session: Session, journey: Journey, customer_ids: set[str]) -> set[str]:
    """The given customers that exist and match the journey's audience, by primary-key lookups."""
    ids = sorted(customer_ids)
    members: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        members.update(
            session.scalars(
                select(Customer.id).where(
                    Customer.id.in_(ids[start : start + CHUNK]), compile_filter(journey.audience)
                )
            )
        )
    return members


def _event_candidates(session: Session, journey: Journey, now: dt.datetime) -> Iterable[Candidate]:
    trig = journey.trigger.event
    assert trig is not None
    for cid, key, at, name, props in _recent_events(session, journey, trig.name, trig.lookback, now):
        props = props or {}
        if event_matches(journey, props):
            yield Candidate(cid, key, at, event_context(name, props, at))


def event_matches(journey: Journey, properties: dict[str, Any]) -> bool:
    """Whether an event's properties satisfy the trigger's `where`."""
    trig = journey.trigger.event
    assert trig is not None
    return not trig.where or all(properties.get(k) == v for k, v in trig.where.items())


def event_context(name: str, properties: dict[str, Any], at: dt.datetime) -> dict[str, Any]:
    return {"event": {**properties, "name": name, "occurred_at": at.isoformat()}}


def inactivity_context(days: int, last_at: dt.datetime) -> dict[str, Any]:
    return {"days_inactive": days, "last_event_at": last_at.isoformat()}


def _inactivity_candidates(session: Session, journey: Journey, now: dt.datetime) -> Iterable[Candidate]:
    trig = journey.trigger.inactivity
    assert trig is not None
    lapse = dt.timedelta(days=trig.days)
    stmt = (
        select(CustomerEventStat.customer_id, CustomerEventStat.last_at)
        .join(Customer, Customer.id == CustomerEventStat.customer_id)
        .where(
            CustomerEventStat.name == trig.event,
            CustomerEventStat.last_at <= now - lapse,
            CustomerEventStat.last_at > now - lapse - trig.lookback,
            compile_filter(journey.audience),
        )
    )
    for cid, last_at in session.execute(stmt):
        yield Candidate(
            cid,
            last_at.isoformat(),
            last_at + lapse,
            inactivity_context(trig.days, last_at),
        )


def _tier_candidates(
    session: Session, journey: Journey, now: dt.datetime, order: tuple[str, ...]
) -> Iterable[Candidate]:
    trig = journey.trigger.tier_change
    assert trig is not None
    for cid, key, at, _name, props in _recent_events(session, journey, "tier_changed", trig.lookback, now):
        old, new = (props or {}).get("from"), (props or {}).get("to")
        if planner.tier_change_matches(trig, old, new, order):
            yield Candidate(cid, key, at, {"old_tier": old, "new_tier": new})


def _anniversary_stmt(journey: Journey, now: dt.datetime) -> Select[Any]:
    trig = journey.trigger.anniversary
    assert trig is not None
    days = planner.anniversary_candidates(now, trig.lookback)
    if trig.trait == "signed_up_at":
        origin: Any = Customer.signed_up_at
        match = Customer.signed_up_md.in_(days)
    elif trig.trait == "birthday":
        origin = Customer.birthday
        match = Customer.birthday_md.in_(days)
    else:
        origin = Customer.traits[trig.trait].as_string()
        match = func.substr(origin, 6, 5).in_([f"{d // 100:02d}-{d % 100:02d}" for d in days])
    stmt = select(Customer.id, origin, Customer.timezone).where(match, compile_filter(journey.audience))
    # Outside the days around New Year only one occurrence key is possible: leave out in SQL
    # those who already have it (what `_drop_existing` would drop), so an idle tick reads few rows.
    keys = {planner.occurrence_key(journey, str(y)) for y in planner.anniversary_years(now, trig.lookback)}
    if len(keys) == 1:
        stmt = stmt.where(_not_enrolled(journey, Customer.id, literal(keys.pop())))
    return stmt


def _anniversary_candidates(
    session: Session, journey: Journey, now: dt.datetime, default_tz: str
) -> Iterable[Candidate]:
    trig = journey.trigger.anniversary
    assert trig is not None
    for cid, origin, tz_name in session.execute(_anniversary_stmt(journey, now)):
        tz = planner.zone(tz_name, default_tz)
        day = origin_date(origin, tz)
        occ = planner.anniversary_due(trig, day, tz, now) if day is not None else None
        if occ is not None:
            yield Candidate(cid, occ.key, occ.occurred_at, occ.context)


def origin_date(origin: Any, tz: ZoneInfo) -> dt.date | None:
    """The local calendar date of a date trait (a timestamp is read in the customer's zone)."""
    if isinstance(origin, dt.datetime):
        return origin.astimezone(tz).date()
    if isinstance(origin, dt.date):
        return origin
    try:
        return parse_date(origin, "date trait")
    except ValueError:
        return None


def candidates(
    session: Session, journey: Journey, catalog: Catalog, now: dt.datetime, default_tz: str
) -> Iterable[Candidate]:
    """Everyone whose occurrence is due for this journey at `now` (audience applied)."""
    kind = journey.trigger.kind
    if kind == "event":
        return _event_candidates(session, journey, now)
    if kind == "inactivity":
        return _inactivity_candidates(session, journey, now)
    if kind == "tier_change":
        return _tier_candidates(session, journey, now, catalog.tier_order)
    if kind == "anniversary":
        return _anniversary_candidates(session, journey, now, default_tz)
    return []


def enroll_due(
    session: Session, journey: Journey, catalog: Catalog, now: dt.datetime, default_tz: str
) -> int:
    """Enroll everyone whose occurrence is due for this journey at `now`; returns how many entered.

    On PostgreSQL the event, tier-change and inactivity triggers are one set-based
    statement (`enroll_pg`); anniversaries, whose due instant is decided in each
    customer's zone, and every trigger on SQLite go through the candidates here.
    """
    if session.get_bind().dialect.name == "postgresql" and journey.trigger.kind in enroll_pg.KINDS:
        return enroll_pg.enroll_due(session, journey, now, catalog.tier_order)
    cands = candidates(session, journey, catalog, now, default_tz)
    return len(insert_enrollments(session, journey, cands, now))


def _cooled_down(
    session: Session, journey: Journey, cands: list[Candidate], now: dt.datetime
) -> list[Candidate]:
    """Keep the latest occurrence per customer, and only customers out of their cool-down."""
    assert isinstance(journey.re_entry, Cooldown)
    latest: dict[str, Candidate] = {}
    for c in cands:
        if c.customer_id not in latest or c.occurred_at > latest[c.customer_id].occurred_at:
            latest[c.customer_id] = c
    recent = set(
        session.scalars(
            select(Enrollment.customer_id).where(
                Enrollment.journey_id == journey.id,
                Enrollment.customer_id.in_(latest),
                Enrollment.entered_at > now - journey.re_entry.cooldown,
            )
        )
    )
    return [c for cid, c in latest.items() if cid not in recent]


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


def insert_enrollments(
    session: Session,
    journey: Journey,
    cands: Iterable[Candidate],
    now: dt.datetime,
    campaign_id: str | None = None,
) -> list[int]:
    """Insert enrollments for candidates under the re-entry policy; returns new ids."""
    batch = list(cands)
    if isinstance(journey.re_entry, Cooldown):
        batch = _cooled_down(session, journey, batch, now)
    first = journey.step_ids()[0]
    new_ids: list[int] = []
    for start in range(0, len(batch), CHUNK):
        rows = [
            {
                "journey_id": journey.id,
                "customer_id": c.customer_id,
                "occurrence_key": planner.occurrence_key(journey, c.raw_key),
                "occurred_at": c.occurred_at,
                "entered_at": now,
                "state": EnrollmentState.ACTIVE,
                "next_step_id": first,
                "next_at": c.occurred_at,
                "context": c.context,
                "campaign_id": campaign_id,
            }
            for c in batch[start : start + CHUNK]
        ]
        rows = _drop_existing(session, journey, rows)
        inserted = insert_ignore(
            session,
            Enrollment.__table__,
            rows,
            ["journey_id", "customer_id", "occurrence_key"],
            ["id"],
        )
        new_ids.extend(r.id for r in inserted)
    return new_ids


def exits(session: Session, journey: Journey, now: dt.datetime) -> list[int]:
    """End active enrollments whose customer had an exit event after the occurrence; returns their ids."""
    names = journey.exit_on.names() if journey.exit_on else []
    if not names:
        return []
    hit = (
        select(Event.name)
        .where(
            Event.customer_id == Enrollment.customer_id,
            Event.name.in_(names),
            Event.occurred_at > Enrollment.occurred_at,
            Event.occurred_at <= now,
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
    if updates:
        session.execute(update(Enrollment), updates)
    return [u["id"] for u in updates]
