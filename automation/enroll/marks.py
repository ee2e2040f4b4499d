"""Where an event journey's tick reads: the events past its mark, and the ones it read and left out.

Reading the whole look-back every tick costs what the look-back holds (50,000
checkouts a day cost a quarter of a second of an idle tick at a million
customers), though almost every event in it is already enrolled. Instead each
event journey keeps a mark, an event id below which it has read everything,
and the events it read but did not enroll (`entry_pending`: a customer outside
the audience or cooling down, an event not yet occurred). A tick reads the
events past the mark and the pending ones: together they hold every event of
the look-back that is not enrolled, so it enrols exactly whom reading the whole
look-back would, whatever changed since (traits, cool-downs, the clock).

The mark only moves to a `frontier` below which every event is committed (on
PostgreSQL ids are handed out before their transactions commit), and it moves,
and the pending rows change, in the journey's own transaction with its
enrolments: a crash loses neither. A change of the journey's entry rules, or a
tick at an earlier `now` than the last, reads the whole look-back again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine, Select, Table, delete, exists, func, literal, select, union_all
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from automation.core import entry
from automation.core.journeys import Journey
from automation.store.models import EntryMark, EntryPending, Event

#: How long the frontier waits for the events' writers in flight; past it the mark stays where it is.
LOCK_WAIT = "100ms"
LOCK_NOT_AVAILABLE = "55P03"


def frontier(engine: Engine) -> int | None:
    """PostgreSQL: an event id at or below which every event is committed; None if a writer stayed.

    SHARE mode waits for the transactions writing events to end and holds new
    ones back for as long as the read of the newest id takes.
    """
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        try:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
            conn.exec_driver_sql("LOCK TABLE events IN SHARE MODE")
            newest = conn.scalar(select(func.max(Event.id)))
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            return None
        finally:
            conn.rollback()
    return int(newest or 0)


def rules(journey: Journey, extra: Any = None) -> str:
    """A digest of what decides who enters: the trigger, the audience, the re-entry policy, and the
    kind's `extra` (the tier order, for a tier change)."""
    body = journey.model_dump(mode="json", include={"trigger", "audience", "re_entry"})
    return hashlib.sha256(json.dumps([body, extra], sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Pool:
    """The events a tick reads for one journey: the whole look-back (`after` None), or past `after`
    plus the pending ones."""

    after: int | None


def pool(session: Session, journey: Journey, now: dt.datetime, extra: Any = None) -> Pool:
    """What this journey's tick at `now` reads, from its mark (`extra` as for `rules`)."""
    mark = session.get(EntryMark, journey.id)
    if mark is None or mark.rules != rules(journey, extra) or now < mark.read_at:
        return Pool(None)
    return Pool(mark.last_id)


def read(unread: Select[Any], journey: Journey, among: Pool) -> Select[Any]:
    """The rows of `unread` (a SELECT from events) whose event is in the pool.

    Two index ranges, never the look-back: the ids past the mark, and the
    pending events by primary key.
    """
    if among.after is None:
        return unread
    past = unread.where(Event.id > among.after)
    pending = unread.join(EntryPending, EntryPending.event_id == Event.id).where(
        EntryPending.journey_id == journey.id, EntryPending.event_id <= among.after
    )
    return cast(Select[Any], select(union_all(past, pending).subquery()))


def keep(
    session: Session,
    journey: Journey,
    now: dt.datetime,
    among: Pool,
    unread: Select[Any],
    lookback: dt.timedelta,
    reached: int | None,
    added: int,
    extra: Any = None,
) -> None:
    """After enrolling: the pool's events still unread become the pending ones, the mark moves on.

    `unread` selects (id, occurred_at) of the journey's events that are not
    enrolled, from the look-back's start on (not yet occurred ones included);
    `reached` is the tick's frontier.
    """
    mine = EntryPending.journey_id == journey.id
    if among.after is None:
        session.execute(delete(EntryPending).where(mine))
    else:
        aged = EntryPending.occurred_at < entry.lookback_start(now, lookback)
        session.execute(delete(EntryPending).where(mine, aged))
        if added:
            gone = ~exists(unread.where(Event.id == EntryPending.event_id))
            session.execute(delete(EntryPending).where(mine, gone))
    fresh = unread if among.after is None else unread.where(Event.id > among.after)
    rows = select(literal(journey.id), fresh.subquery())
    table = cast(Table, EntryPending.__table__)
    session.execute(
        insert(table).from_select(["journey_id", "event_id", "occurred_at"], rows).on_conflict_do_nothing()
    )
    last = reached if reached is not None else among.after
    if last is None:
        session.execute(delete(EntryMark).where(EntryMark.journey_id == journey.id))
        return
    values = {"journey_id": journey.id, "rules": rules(journey, extra), "last_id": last, "read_at": now}
    stmt = insert(cast(Table, EntryMark.__table__)).values(values)
    session.execute(stmt.on_conflict_do_update(index_elements=["journey_id"], set_=values))
