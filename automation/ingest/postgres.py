"""Applying a batch of ingest records on PostgreSQL: COPY into staging, then set-based SQL.

The same rules as the ORM writer of `ingest.load.apply_batch`, at bulk speed. The batch's customers
are read once (locked), identifies are merged trait by trait in Python with the
pure `merge_traits` (newest wins, tier changes become `tier_changed` events),
and then only set-based statements touch the tables: the changed customers and
the events are COPYed into temporary tables and upserted from there. Events are
inserted with ON CONFLICT DO NOTHING and the rows actually inserted (RETURNING)
drive the per-event statistics and the order facts, so a re-ingested event
changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, event, text
from sqlalchemy.orm import Session

from automation.core.records import (
    WELL_KNOWN,
    Identify,
    Record,
    Track,
    merge_traits,
    month_day,
    order_total,
    tier_event,
)
from automation.ingest.applying import Applying
from automation.loyalty import coupons
from automation.loyalty.events import apply_tracks, takes_any
from automation.store import topics as topic_choices
from automation.store.db import PREPARED
from automation.store.sqlutil import copy_into

CUSTOMER_COLUMNS = (
    "id",
    *WELL_KNOWN,
    "traits",
    "trait_times",
    "signed_up_md",
    "birthday_md",
    "created_at",
    "updated_at",
)
# Created once per connection (`stage`); ON COMMIT DELETE ROWS empties them after each batch.
# Events are COPYed in binary (their values are typed by the parser); properties stay text
# until the INSERT casts them.
_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS ingest_customers (
    id text, email text, phone text, timezone text, first_name text, last_name text, tier text,
    signed_up_at timestamptz, birthday date, email_opt_in boolean, sms_opt_in boolean,
    traits jsonb, trait_times jsonb, signed_up_md smallint, birthday_md smallint,
    created_at timestamptz, updated_at timestamptz
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS ingest_events (
    ord bigint, event_key text, customer_id text, name text, occurred_at timestamptz, properties text,
    total numeric
) ON COMMIT DELETE ROWS;
"""
_EVENT_COLUMNS = ("ord", "event_key", "customer_id", "name", "occurred_at", "properties", "total")
_EVENT_TYPES = ("int8", "text", "text", "text", "timestamptz", "text", "numeric")
_LOAD = text(
    "SELECT id, " + ", ".join(WELL_KNOWN) + ", traits, trait_times, created_at, updated_at "
    "FROM customers WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"
)
# A batch of tracks alone needs only its customers' time zones (and the whole rows of those whose
# tier the loyalty programme changes, read again then).
_LOAD_ZONES = text("SELECT id, timezone FROM customers WHERE id = ANY(:ids) ORDER BY id FOR UPDATE")
_TRAIT_COLUMNS = [c for c in CUSTOMER_COLUMNS if c not in ("id", "created_at", "updated_at")]
# One statement, so that a customer row is written once per batch: the new events
# (ON CONFLICT DO NOTHING ... RETURNING says which are new) feed the statistics and
# the order facts; staged customers are upserted with their order facts folded in,
# and customers not staged (orders only, already known) get their facts updated.
# Events go in key order, so the unique index is written leaf by leaf rather than at random,
# but take their ids in the order they came (`ord`, numbered before the insert sorts them):
# the ledger applied them in that order, and `loyalty recompute` replays events of one instant
# by id, so it must see them in that order too. Customers, then statistics, are written in key
# order too, so that batches which do not lock their customers first cannot deadlock each other
# or one that does. The sequence is named as the column's default names it: a literal is resolved
# once, where `pg_get_serial_sequence` searched the catalog for every event (a seventh of the batch).
_EVENTS = """
    WITH {staged}numbered AS MATERIALIZED (
        SELECT nextval('events_id_seq') AS id, s.*
        FROM (SELECT * FROM ingest_events ORDER BY ord) AS s
    ), ins AS (
        INSERT INTO events (id, event_key, customer_id, name, occurred_at, properties, received_at)
        SELECT id, event_key, customer_id, name, occurred_at, properties::jsonb, :now FROM numbered
        ORDER BY event_key
        ON CONFLICT (event_key) DO NOTHING
        RETURNING event_key, customer_id, name, occurred_at
    ), stats AS (
        INSERT INTO customer_event_stats AS s (customer_id, name, first_at, last_at, count)
        SELECT customer_id, name, min(occurred_at), max(occurred_at), count(*)
        FROM ins GROUP BY customer_id, name ORDER BY customer_id, name
        ON CONFLICT (customer_id, name) DO UPDATE SET
            count = s.count + excluded.count,
            first_at = least(s.first_at, excluded.first_at),
            last_at = greatest(s.last_at, excluded.last_at)
        RETURNING s.customer_id, s.xmax = 0 AS created
    )"""
_APPLY = (
    _EVENTS
    + """, o AS (
        SELECT ins.customer_id, count(*) AS n, sum(st.total) AS total, max(ins.occurred_at) AS last_at
        FROM ins JOIN ingest_events st ON st.event_key = ins.event_key
        WHERE ins.name = :order_event
        GROUP BY ins.customer_id
    ), up AS (
        INSERT INTO customers AS c ("""
    + ", ".join(CUSTOMER_COLUMNS)
    + """, order_count, lifetime_value, last_order_at)
        SELECT s.id, s.email, s.phone, s.timezone, s.first_name, s.last_name, s.tier, s.signed_up_at,
            s.birthday, coalesce(s.email_opt_in, false), coalesce(s.sms_opt_in, false), s.traits,
            s.trait_times, s.signed_up_md, s.birthday_md, s.created_at,
            CASE WHEN o.n IS NULL THEN s.updated_at ELSE :now END,
            coalesce(o.n, 0), coalesce(o.total, 0), o.last_at
        FROM ingest_customers s LEFT JOIN o ON o.customer_id = s.id
        ORDER BY s.id
        ON CONFLICT (id) DO UPDATE SET """
    + ", ".join(f"{c} = excluded.{c}" for c in _TRAIT_COLUMNS)
    + """,
            updated_at = excluded.updated_at,
            order_count = c.order_count + excluded.order_count,
            lifetime_value = c.lifetime_value + excluded.lifetime_value,
            last_order_at = greatest(c.last_order_at, excluded.last_order_at)
        WHERE NOT (c.id = ANY(CAST(:fresh AS text[])))
        RETURNING c.id
    ), facts AS (
        UPDATE customers c SET
            order_count = c.order_count + o.n,
            lifetime_value = c.lifetime_value + o.total,
            last_order_at = greatest(c.last_order_at, o.last_at),
            updated_at = :now
        FROM o
        WHERE c.id = o.customer_id
            AND NOT EXISTS (SELECT 1 FROM ingest_customers s WHERE s.id = o.customer_id)
    )
    SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM up)
    """
)
# A batch that read no customers (`_unread`: tracks alone, no order) only adds its events and
# statistics, and inserts its unknown customers as empty rows, as `_add_new` makes them, leaving
# the known ones unlocked and unwritten. Planning the whole statement for it cost more than
# running it. A customer is looked for only where the batch created a statistics row (`created`:
# a new row has no xmax yet): every customer with a row of statistics exists (erasure deletes
# both), and the lookups of the others were a tenth of the statement.
_APPLY_TRACKS = (
    _EVENTS
    + """, missing AS (
        INSERT INTO customers (id, traits, trait_times, email_opt_in, sms_opt_in, created_at, updated_at,
            order_count, lifetime_value)
        SELECT DISTINCT customer_id, '{}'::jsonb, '{}'::jsonb, false, false, :now, :now, 0, 0
        FROM stats WHERE created
        ORDER BY customer_id
        ON CONFLICT (id) DO NOTHING
    )
    SELECT (SELECT count(*) FROM ins), 0
    """
)


# A batch of at most this many events passes them as one JSON parameter of the statement that
# applies them (a CTE named as the staging table, which it hides): one `json.dumps` and no COPY,
# two round trips fewer. Larger batches (a file's) keep the binary COPY, cheaper by the thousand.
JSON_EVENTS = 1000
_AS_JSON = (
    "ingest_events AS (SELECT ord, e->>0 AS event_key, e->>1 AS customer_id, e->>2 AS name, "
    "CAST(e->>3 AS timestamptz) AS occurred_at, e->4 AS properties, CAST(e->>5 AS numeric) AS total "
    "FROM jsonb_array_elements(CAST(:events AS jsonb)) WITH ORDINALITY AS a(e, ord)), "
)
# By (events as JSON, customers read). The statement of tracks alone reaches its tables through
# their unique indexes only, so a plan made once serves every batch: it is prepared (planning it
# was a tenth of its time). The whole one joins `customers`, whose plan must see the batch's ids.
_STATEMENTS = {
    (as_json, read): text(statement.replace("{staged}", _AS_JSON if as_json else "")).execution_options(
        **{PREPARED: not read}
    )
    for as_json in (True, False)
    for read, statement in ((True, _APPLY), (False, _APPLY_TRACKS))
}


class _State:
    """One customer's row as the batch sees it, and whether it must be written."""

    __slots__ = ("created_at", "dirty", "fresh", "row", "times", "updated_at")

    def __init__(
        self, row: dict[str, Any], times: dict[str, str], created_at: dt.datetime, updated_at: dt.datetime
    ):
        self.row = row
        self.times = times
        self.created_at = created_at
        self.updated_at = updated_at
        self.dirty = False
        #: Not in the database when the batch read its customers.
        self.fresh = False


def _load(session: Session, ids: list[str], now: dt.datetime) -> dict[str, _State]:
    states: dict[str, _State] = {}
    for r in session.execute(_LOAD, {"ids": ids}).mappings():
        row = {name: r[name] for name in WELL_KNOWN}
        row["traits"] = dict(r["traits"] or {})
        states[r["id"]] = _State(row, dict(r["trait_times"] or {}), r["created_at"], r["updated_at"])
    _add_new(states, ids, now)
    return states


def _load_zones(session: Session, ids: list[str], now: dt.datetime) -> dict[str, _State]:
    """The batch's customers locked, known ones with their time zone only: not written unless read whole."""
    states: dict[str, _State] = {}
    for cid, zone in session.execute(_LOAD_ZONES, {"ids": ids}):
        row = dict.fromkeys(WELL_KNOWN)
        row["timezone"] = zone
        states[cid] = _State(row, {}, now, now)
    _add_new(states, ids, now)
    return states


def _add_new(states: dict[str, _State], ids: list[str], now: dt.datetime) -> None:
    """The batch's customers not in the database yet, as rows to write."""
    for cid in ids:
        if cid not in states:
            row = dict.fromkeys(WELL_KNOWN)
            row["traits"] = {}
            state = _State(row, {}, now, now)
            state.dirty = state.fresh = True
            states[cid] = state


def _identify(state: _State, cid: str, rec: Identify, now: dt.datetime) -> Track | None:
    view = {**state.row["traits"], **{n: state.row[n] for n in WELL_KNOWN}}
    merge = merge_traits(view, state.times, rec)
    state.times = merge.times
    state.dirty = True
    for name, value in merge.changed.items():
        if name in WELL_KNOWN:
            state.row[name] = value
        else:
            state.row["traits"] = {**state.row["traits"], name: value}
    if merge.changed:
        state.updated_at = now
    if merge.tier_change is None:
        return None
    return tier_event(cid, *merge.tier_change, rec.timestamp)


def _customer_rows(states: dict[str, _State]) -> list[tuple[Any, ...]]:
    rows = []
    for cid, s in states.items():
        if not s.dirty:
            continue
        r = s.row
        rows.append(
            (
                cid,
                *(r[name] for name in WELL_KNOWN),
                json.dumps(r["traits"]),
                json.dumps(s.times),
                month_day(r["signed_up_at"]),
                month_day(r["birthday"]),
                s.created_at,
                s.updated_at,
            )
        )
    return rows


def stage(connection: Connection) -> None:
    """Create this connection's staging tables, once, before its first batch."""
    with connection.begin():
        _create_staging(connection)


_STAGED = "automation_ingest_staged"


def _unstaged(connection: Connection) -> None:
    """A rollback may have undone the transaction that created the staging tables."""
    connection.info.pop(_STAGED, None)


def _create_staging(connection: Connection) -> None:
    """Create the staging tables and mark the connection (its `info`); any rollback clears the mark."""
    if not event.contains(connection.engine, "rollback", _unstaged):
        event.listen(connection.engine, "rollback", _unstaged)
    connection.exec_driver_sql(_STAGE)
    connection.info[_STAGED] = True


def stage_in(session: Session) -> None:
    """Create the staging tables inside the session's transaction, unless its connection has them.

    Tables created in a transaction that was undone are made again.
    """
    connection = session.connection()
    if not connection.info.get(_STAGED):
        _create_staging(connection)


#: How many times a batch runs when other transactions keep creating its new customers first.
ATTEMPTS = 3


class _Raced(Exception):
    """Another transaction created a customer this batch read as new: it must not be overwritten."""


def apply_pg(session: Session, records: list[Record], applying: Applying) -> int:
    """Apply one batch of records (their traits owned by the programme already) in the caller's transaction.

    Returns how many events were new. The session's connection must have been through `stage`.
    A customer absent when the batch read (and locked) its rows, but created by another
    transaction before the batch wrote (two calls for one new customer at once), is never
    overwritten with what the batch did not see: the batch is undone to a savepoint taken
    after the read and runs again, reading that row. A batch of known customers alone holds
    all its rows locked and cannot race: it takes no savepoint (two round trips saved).
    """
    for _ in range(ATTEMPTS):
        states = _states(session, records, applying)
        if not any(state.fresh for state in states.values()):
            return _write(session, records, states, applying)
        try:
            with session.begin_nested():
                return _write(session, records, states, applying)
        except _Raced:
            continue
    raise RuntimeError("the new customers of this batch kept being created by other transactions first")


def _unread(records: list[Record], applying: Applying) -> bool:
    """Whether the batch needs none of its customers' rows: tracks alone, no order, none the programme takes.

    Such a batch only adds events and statistics (atomic upserts) and creates the customers it
    names that do not exist yet, so it reads and locks no customer and takes no savepoint.
    """
    tracks = [r for r in records if isinstance(r, Track)]
    return (
        len(tracks) == len(records)
        and all(t.event != applying.order_event for t in tracks)
        and not takes_any(applying.programme, tracks)
    )


def _states(session: Session, records: list[Record], applying: Applying) -> dict[str, _State]:
    """The batch's customers, locked: whole rows if an identify changes traits, else time zones only.

    None for a batch that needs nothing of them (`_unread`).
    """
    if _unread(records, applying):
        return {}
    ids = sorted({r.customer_id for r in records})
    whole = any(isinstance(r, Identify) for r in records)
    return (_load if whole else _load_zones)(session, ids, applying.now)


def _write(session: Session, records: list[Record], states: dict[str, _State], applying: Applying) -> int:
    now, order_event, programme = applying.now, applying.order_event, applying.programme
    whole = any(isinstance(r, Identify) for r in records)
    tracks: dict[str, Track] = {}
    for rec in records:
        if isinstance(rec, Identify):
            tier = _identify(states[rec.customer_id], rec.customer_id, rec, now)
            if tier is not None:
                tracks[tier.event_key] = tier
        else:
            tracks[rec.event_key] = rec
    zones = {cid: s.row["timezone"] for cid, s in states.items()}
    programme_outcome = apply_tracks(session, programme, list(tracks.values()), zones, now)
    tracks.update((t.event_key, t) for t in programme_outcome.events)
    retiered = sorted(cid for cid in programme_outcome.tiers if not states[cid].dirty)
    if not whole and retiered:
        states.update(_load(session, retiered, now))  # the rows to rewrite, whole (locked already)
    for cid, new_tier in programme_outcome.tiers.items():
        states[cid].row["tier"] = new_tier
        states[cid].dirty = True
        states[cid].updated_at = now
    copy_into(session, "ingest_customers", CUSTOMER_COLUMNS, _customer_rows(states))
    fresh = [cid for cid, state in states.items() if state.fresh]
    params: dict[str, Any] = {"now": now, "order_event": order_event, "fresh": fresh}
    zero = Decimal(0)

    def total(t: Track) -> Decimal:
        return order_total(t.properties) if t.event == order_event else zero

    as_json = len(tracks) <= JSON_EVENTS
    statement = _STATEMENTS[as_json, bool(states)]
    if as_json:
        params["events"] = json.dumps(
            [
                (t.event_key, t.customer_id, t.event, t.timestamp.isoformat(), t.properties, str(total(t)))
                for t in tracks.values()
            ]
        )
    else:
        rows = [
            (
                n,
                t.event_key,
                t.customer_id,
                t.event,
                t.timestamp,
                json.dumps(t.properties),
                total(t),
            )
            for n, t in enumerate(tracks.values())
        ]
        copy_into(session, "ingest_events", _EVENT_COLUMNS, rows, _EVENT_TYPES)
    topic_choices.record_identifies(session, records, applying.how)
    coupons.redeem_orders(session, tracks.values(), order_event)
    new_events, written = session.execute(statement, params).one()
    if written < sum(state.dirty for state in states.values()):
        raise _Raced
    return int(new_events)
