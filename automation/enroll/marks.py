"""Where an event journey's tick reads: its pending events, gathered from past its mark.

Reading the whole look-back every tick costs what the look-back holds (50,000
checkouts a day cost a quarter of a second of an idle tick at a million
customers), though almost every event in it is already enrolled. Instead each
event journey keeps a mark, an event id below which it has read everything,
and its pending events (`entry_pending`): those read and not enrolled (a
customer outside the audience or cooling down, an event not yet occurred).
Each tick first gathers the unread events past the mark into the pending ones,
then enrols from the pending ones alone: they are every event of the look-back
not enrolled, so it enrols exactly whom reading the whole look-back would,
whatever changed since (traits, cool-downs, the clock). What it enrolled leaves
the pending ones by the keys the INSERT returned, never by probing the
enrollments it just wrote (their statistics are stale within the tick).

The mark only moves to a `frontier` below which every event is committed (on
PostgreSQL ids are handed out before their transactions commit), and it moves,
and the pending rows change, in the journey's own transaction with its
enrolments: a crash loses neither. A change of the journey's entry rules, or a
tick at an earlier `now` than the last, gathers the whole look-back again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Engine,
    Select,
    String,
    Table,
    delete,
    func,
    literal,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from automation.core import entry
from automation.core.journeys import Journey
from automation.enroll import lookup, policy
from automation.store.models import EntryMark, EntryPending, Event

#: How long the frontier waits for the events' writers in flight; past it the mark stays where it is.
LOCK_WAIT = "100ms"
LOCK_NOT_AVAILABLE = "55P03"
#: One round trip: SHARE mode waits for the transactions writing events to end, and holds new ones
#: back for as long as the read of the newest id takes.
FRONTIER = (
    f"SET LOCAL lock_timeout = '{LOCK_WAIT}'; LOCK TABLE events IN SHARE MODE; SELECT max(id) FROM events"
)


def frontier(engine: Engine) -> int | None:
    """PostgreSQL: an event id at or below which every event is committed; None if a writer stayed."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        try:
            cursor = raw.cursor()
            cursor.execute(FRONTIER)
            while cursor.description is None and cursor.nextset():
                pass  # to the last statement's result
            row = cursor.fetchone()
        except Exception as exc:
            if getattr(exc, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            return None
        finally:
            raw.rollback()
    return int(row[0] or 0) if row else 0


def rules(journey: Journey, extra: Any = None) -> str:
    """A digest of what decides who enters: the trigger, the audience, the re-entry policy, and the
    kind's `extra` (the tier order, for a tier change)."""
    body = journey.model_dump(mode="json", include={"trigger", "audience", "re_entry"})
    return hashlib.sha256(json.dumps([body, extra], sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Pool:
    """What a tick gathers for one journey: the whole look-back (`after` None), or past `after`."""

    after: int | None


def pool(session: Session, journey: Journey, now: dt.datetime, extra: Any = None) -> Pool:
    """What this journey's tick at `now` gathers, from its mark (`extra` as for `rules`)."""
    mark = session.get(EntryMark, journey.id)
    if mark is None or mark.rules != rules(journey, extra) or now < mark.read_at:
        return Pool(None)
    return Pool(mark.last_id)


def unread(
    journey: Journey, name: str, now: dt.datetime, lookback: dt.timedelta, *columns: Any
) -> Select[Any]:
    """The journey's `name` events not yet enrolled, from the look-back's start on (ahead of `now` too)."""
    return select(*columns).where(
        Event.name == name,
        policy.since_lookback_start(Event.occurred_at, now, lookback),
        policy.not_enrolled(journey, Event.customer_id, policy.key(journey, Event.event_key), per_row=True),
    )


def gather(
    session: Session,
    journey: Journey,
    among: Pool,
    name: str,
    now: dt.datetime,
    lookback: dt.timedelta,
    *where: ColumnElement[bool],
) -> None:
    """Add to the journey's pending events its unread `name` events that also meet `where` and lie
    past the mark; all of them in the look-back, when the pool is the whole look-back."""
    mine = EntryPending.journey_id == journey.id
    events = unread(journey, name, now, lookback, Event.id, Event.customer_id, Event.occurred_at).where(
        *where
    )
    if among.after is None:
        session.execute(delete(EntryPending).where(mine))
    else:
        events = events.where(Event.id > among.after)
    rows = select(literal(journey.id), events.subquery())
    table = cast(Table, EntryPending.__table__)
    stmt = insert(table).from_select(["journey_id", "event_id", "customer_id", "occurred_at"], rows)
    session.execute(stmt.on_conflict_do_nothing())


def pending(journey: Journey, now: dt.datetime, lookback: dt.timedelta, *columns: Any) -> Select[Any]:
    """`columns` of the journey's pending events in the look-back at `now`.

    Driven from the pending rows, the events read by primary key: no condition on
    the events themselves, so no plan reads the look-back, whatever the statistics
    say. The pending events are unread by construction (gathered unread, removed
    once entered): this SELECT need not probe the enrollments its INSERT is
    writing, which a plan for a journey that had none would do once per row.
    """
    return (
        select(*columns)
        .select_from(EntryPending)
        .join(Event, Event.id == EntryPending.event_id)
        .where(
            EntryPending.journey_id == journey.id,
            *policy.in_lookback(EntryPending.occurred_at, now, lookback),
            # Before the event is read: most pending events an idle tick sees are outside the audience.
            lookup.member(journey, EntryPending.customer_id),
        )
    )


def keep(
    session: Session,
    journey: Journey,
    now: dt.datetime,
    among: Pool,
    lookback: dt.timedelta,
    reached: int | None,
    entered: Sequence[tuple[str, str]],
    extra: Any = None,
) -> None:
    """After enrolling `entered` (customer id, occurrence key): they leave the pending events, the
    mark moves to the tick's frontier `reached`. Nothing is written when nothing moved."""
    mine = EntryPending.journey_id == journey.id
    if entered:
        cids, keys = zip(*entered, strict=True)
        done = select(
            func.unnest(literal(list(cids), ARRAY(String))).label("customer_id"),
            func.unnest(literal(list(keys), ARRAY(String))).label("occurrence_key"),
        ).subquery()
        key = tuple_(Event.customer_id, policy.key(journey, Event.event_key))
        enrolled = key.in_(select(done.c.customer_id, done.c.occurrence_key))
        session.execute(delete(EntryPending).where(mine, EntryPending.event_id == Event.id, enrolled))
    last = reached if reached is not None else among.after
    if last is None:
        session.execute(delete(EntryMark).where(EntryMark.journey_id == journey.id))
        return
    if among.after == last and not entered:
        return
    aged = EntryPending.occurred_at < entry.lookback_start(now, lookback)
    session.execute(delete(EntryPending).where(mine, aged))
    values = {"journey_id": journey.id, "rules": rules(journey, extra), "last_id": last, "read_at": now}
    stmt = insert(cast(Table, EntryMark.__table__)).values(values)
    session.execute(stmt.on_conflict_do_update(index_elements=["journey_id"], set_=values))
