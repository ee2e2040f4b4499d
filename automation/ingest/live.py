"""Storing tracking-API calls: known customers through the one writing path, visitors aside.

A call keyed by a user id goes through `apply_batch`, the same writer a file's
batch uses. A call with only an anonymous id waits in `anonymous_ids` (traits,
merged like a customer's) and `anonymous_events` until an identify or alias
links that id to a user; then its traits and events are replayed for the
customer through the same writer, keeping their times and keys, so journeys
judge them by when they happened (their look-back still applies) and a
replay changes nothing. An anonymous id links to one customer: the first link
wins. Everything one request asks for is one transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from automation.core.programme import Programme
from automation.core.records import Identify, Record, Track, merge_traits, parse_data
from automation.core.segment import Call
from automation.ingest.applying import Applying
from automation.ingest.load import REFUSED, apply_batch, refusal_text
from automation.store.models import AnonymousEvent, AnonymousId
from automation.store.sqlutil import insert_ignore


@dataclass
class Stored:
    """What a request stored: events new to the database, and the calls refused by it."""

    new_events: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)


def _anonymous(session: Session, ids: set[str], now: dt.datetime) -> dict[str, AnonymousId]:
    rows = [{"anonymous_id": a, "traits": {}, "trait_times": {}, "created_at": now} for a in sorted(ids)]
    insert_ignore(session, AnonymousId.__table__, rows, ["anonymous_id"])
    query = select(AnonymousId).where(AnonymousId.anonymous_id.in_(ids)).order_by(AnonymousId.anonymous_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return {a.anonymous_id: a for a in session.scalars(query)}


def _waiting(session: Session, visitor: AnonymousId, customer_id: str, now: dt.datetime) -> list[Record]:
    """The visitor's traits and events, as the customer's records; they stop waiting."""
    records: list[Record] = []
    by_time: dict[str, dict[str, object]] = {}
    for name, stamp in visitor.trait_times.items():
        by_time.setdefault(stamp, {})[name] = visitor.traits.get(name)
    for stamp, traits in sorted(by_time.items()):
        data = {"type": "identify", "customer_id": customer_id, "traits": traits, "timestamp": stamp}
        records.append(parse_data(data, now))
    events = session.scalars(
        select(AnonymousEvent)
        .where(AnonymousEvent.anonymous_id == visitor.anonymous_id)
        .order_by(AnonymousEvent.occurred_at, AnonymousEvent.id)
    )
    records.extend(Track(customer_id, e.name, e.event_key, e.occurred_at, e.properties) for e in events)
    session.execute(delete(AnonymousEvent).where(AnonymousEvent.anonymous_id == visitor.anonymous_id))
    visitor.traits, visitor.trait_times = {}, {}
    return records


def _link(session: Session, visitor: AnonymousId, customer_id: str, now: dt.datetime) -> list[Record]:
    if visitor.customer_id is not None:
        return []
    visitor.customer_id = customer_id
    visitor.linked_at = now
    return _waiting(session, visitor, customer_id, now)


def _wait(session: Session, visitor: AnonymousId, record: Record, now: dt.datetime) -> None:
    """Keep a call of a visitor not yet linked."""
    if isinstance(record, Identify):
        merge = merge_traits(visitor.traits, visitor.trait_times, record)
        # Raw JSON values: parsed again, like a file's line, when they are replayed.
        visitor.traits = {**visitor.traits, **_json_traits(merge.changed)}
        visitor.trait_times = merge.times
        return
    row = {**record.row(now), "anonymous_id": visitor.anonymous_id}
    insert_ignore(session, AnonymousEvent.__table__, [row], ["event_key"])


def _json_traits(traits: dict[str, object]) -> dict[str, object]:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in traits.items()}


def _apply(
    session: Session,
    calls: Sequence[Call],
    now: dt.datetime,
    order_event: str,
    programme: Programme | None,
) -> int:
    ids = {c.anonymous_id for c in calls if c.anonymous_id and not c.known}
    ids |= {c.link[0] for c in calls if c.link}
    visitors = _anonymous(session, ids, now) if ids else {}
    records: list[Record] = []
    for call in calls:
        if call.link:
            records.extend(_link(session, visitors[call.link[0]], call.link[1], now))
    for call in calls:
        if call.record is None:
            continue
        if call.known:
            records.append(call.record)
            continue
        visitor = visitors[call.record.customer_id]
        if visitor.customer_id is None:
            _wait(session, visitor, call.record, now)
        else:
            records.append(dataclasses.replace(call.record, customer_id=visitor.customer_id))
    session.flush()
    return apply_batch(session, records, Applying(now, order_event, "api", programme)) if records else 0


def store_calls(
    sessions: sessionmaker[Session],
    calls: Sequence[Call],
    now: dt.datetime,
    order_event: str,
    admit: Callable[[Session], None] = lambda _session: None,
    programme: Programme | None = None,
) -> Stored:
    """Commit the calls together; if the database refuses them, call by call, so only bad ones are lost.

    `admit` runs first in the same transaction (the API's key check) and may raise to store nothing.
    """
    stored = Stored()
    try:
        with sessions.begin() as session:
            admit(session)
            stored.new_events = _apply(session, calls, now, order_event, programme)
        return stored
    except REFUSED:
        pass
    for index, call in enumerate(calls):
        try:
            with sessions.begin() as session:
                stored.new_events += _apply(session, [call], now, order_event, programme)
        except REFUSED as exc:
            stored.refused.append((index, refusal_text(exc)))
    return stored
