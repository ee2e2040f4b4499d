"""Loading identify/track records into customer state, in batches.

Each batch is one transaction. Events are unique by key, so a file ingested
twice changes nothing; order facts and per-event statistics are updated only
for events that were new. A line that cannot be parsed is reported with its
number; if the database refuses a batch, its records are retried one by one
so that only the bad line is lost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg
from sqlalchemy import select, tuple_
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from automation.ingest_pg import apply_records_pg
from automation.models import Customer, CustomerEventStat, Event
from automation.records import (
    WELL_KNOWN,
    Identify,
    Record,
    RecordError,
    Track,
    merge_traits,
    month_day,
    order_total,
    parse_record,
    tier_event,
)
from automation.sqlutil import insert_ignore

BATCH = 1000
PG_BATCH = 10_000
# A batch the database refuses is retried record by record; COPY raises the driver's own errors.
REFUSED = (IntegrityError, DataError, psycopg.DataError, psycopg.IntegrityError)


@dataclass
class IngestResult:
    read: int = 0
    applied: int = 0
    new_events: int = 0
    rejected: list[str] = field(default_factory=list)


def _customer_view(c: Customer) -> dict[str, object]:
    view = dict(c.traits or {})
    for name in WELL_KNOWN:
        view[name] = getattr(c, name)
    return view


def _apply_identify(c: Customer, rec: Identify, now: dt.datetime) -> Track | None:
    merge = merge_traits(_customer_view(c), c.trait_times or {}, rec)
    c.trait_times = merge.times
    if merge.changed:
        custom = dict(c.traits or {})
        for name, value in merge.changed.items():
            if name in WELL_KNOWN:
                setattr(c, name, value)
            else:
                custom[name] = value
        c.traits = custom
        c.signed_up_md = month_day(c.signed_up_at)
        c.birthday_md = month_day(c.birthday)
        c.updated_at = now
    if merge.tier_change is None:
        return None
    return tier_event(c.id, *merge.tier_change, rec.timestamp)


def apply_records(session: Session, records: list[Record], now: dt.datetime, order_event: str) -> int:
    """Apply one batch inside the caller's transaction; returns how many events were new."""
    ids = {r.customer_id for r in records}
    customers = {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(ids)))}
    for cid in ids - customers.keys():
        c = Customer(id=cid, traits={}, trait_times={}, created_at=now, updated_at=now)
        session.add(c)
        customers[cid] = c
    tracks: list[Track] = []
    for rec in records:
        if isinstance(rec, Identify):
            tier_event = _apply_identify(customers[rec.customer_id], rec, now)
            if tier_event:
                tracks.append(tier_event)
        else:
            tracks.append(rec)
    session.flush()
    if not tracks:
        return 0
    by_key = {t.event_key: t for t in tracks}
    rows = [
        {
            "event_key": t.event_key,
            "customer_id": t.customer_id,
            "name": t.event,
            "occurred_at": t.timestamp,
            "properties": t.properties,
            "received_at": now,
        }
        for t in by_key.values()
    ]
    inserted = [
        by_key[r.event_key]
        for r in insert_ignore(session, Event.__table__, rows, ["event_key"], ["event_key"])
    ]
    _update_facts(session, customers, inserted, order_event, now)
    return len(inserted)


def _update_facts(
    session: Session,
    customers: dict[str, Customer],
    events: list[Track],
    order_event: str,
    now: dt.datetime,
) -> None:
    pairs = {(t.customer_id, t.event) for t in events}
    stats = {
        (s.customer_id, s.name): s
        for s in session.scalars(
            select(CustomerEventStat).where(
                tuple_(CustomerEventStat.customer_id, CustomerEventStat.name).in_(pairs)
            )
        )
    }
    for t in events:
        stat = stats.get((t.customer_id, t.event))
        if stat is None:
            stat = CustomerEventStat(
                customer_id=t.customer_id,
                name=t.event,
                first_at=t.timestamp,
                last_at=t.timestamp,
                count=0,
            )
            session.add(stat)
            stats[(t.customer_id, t.event)] = stat
        stat.count += 1
        stat.first_at = min(stat.first_at, t.timestamp)
        stat.last_at = max(stat.last_at, t.timestamp)
        if t.event == order_event:
            c = customers[t.customer_id]
            c.order_count = (c.order_count or 0) + 1
            c.lifetime_value = (c.lifetime_value or 0) + order_total(t.properties)
            if c.last_order_at is None or t.timestamp > c.last_order_at:
                c.last_order_at = t.timestamp
            c.updated_at = now


def _batches(
    lines: Iterable[str],
    source: str,
    now: dt.datetime,
    result: IngestResult,
    problems: list[tuple[int, str]],
    size: int,
) -> Iterator[list[tuple[int, Record]]]:
    batch: list[tuple[int, Record]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        result.read += 1
        try:
            batch.append((number, parse_record(line, now)))
        except RecordError as exc:
            problems.append((number, f"{source}:{number}: {exc}"))
            continue
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def ingest(
    lines: Iterable[str],
    source: str,
    session_factory: sessionmaker[Session],
    now: dt.datetime,
    order_event: str = "order_placed",
    progress: Callable[[int], None] | None = None,
) -> IngestResult:
    """Ingest JSON lines; every bad line is reported as `source:line: reason`, in line order.

    On PostgreSQL each batch goes through COPY and set-based SQL (`ingest_pg`);
    elsewhere through the ORM. The rules are the same. Batches are applied one
    at a time and in order by a second thread while this one parses the next,
    so parsing overlaps the database's work.
    """
    result = IngestResult()
    problems: list[tuple[int, str]] = []
    bind = session_factory.kw["bind"]
    on_pg = bind is not None and bind.dialect.name == "postgresql"
    apply = apply_records_pg if on_pg else apply_records

    def run(batch: list[tuple[int, Record]]) -> None:
        try:
            with session_factory.begin() as session:
                result.new_events += apply(session, [r for _, r in batch], now, order_event)
            result.applied += len(batch)
        except REFUSED:
            for number, rec in batch:
                try:
                    with session_factory.begin() as session:
                        result.new_events += apply(session, [rec], now, order_event)
                    result.applied += 1
                except REFUSED as exc:
                    problems.append((number, f"{source}:{number}: refused by the database: {_reason(exc)}"))
        if progress:
            progress(len(batch))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest") as writer:
        pending: Future[None] | None = None
        for batch in _batches(lines, source, now, result, problems, PG_BATCH if on_pg else BATCH):
            if pending is not None:
                pending.result()
            pending = writer.submit(run, batch)
        if pending is not None:
            pending.result()
    result.rejected = [text for _, text in sorted(problems, key=lambda p: p[0])]
    return result


def _reason(exc: Exception) -> str:
    """Why the database refused a line, from its SQLSTATE: the server's text may quote the value."""
    orig = getattr(exc, "orig", None)
    state = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
    if state == "22001":
        return "value too long for its field"
    if state.startswith("22"):
        return "a value is malformed for its field"
    if state.startswith("23"):
        return "conflicts with data already stored"
    return "a value is not accepted"
