"""Loading identify/track records into customer state, in batches.

Each batch (on PostgreSQL, each lane's share of it) is one transaction.
Events are unique by key, so a file ingested twice changes nothing; order
facts and per-event statistics are updated only for events that were new. A
line that cannot be parsed is reported with its number; if the database
refuses a batch, its records are retried one by one so that only the bad line
is lost.
"""

from __future__ import annotations

import datetime as dt
import gc
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

import psycopg
from sqlalchemy import Connection, Engine, select, tuple_
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from automation.core.programme import Programme
from automation.core.records import (
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
from automation.errors import PointsRefusal
from automation.ingest.applying import Applying
from automation.ingest.postgres import apply_pg, stage, stage_in
from automation.loyalty import coupons
from automation.loyalty.events import TIER_OWNED, apply_tracks, owned_traits
from automation.store import topics as topic_choices
from automation.store.models import Customer, CustomerEventStat, Event
from automation.store.sqlutil import insert_ignore

BATCH = 1000
PG_BATCH = 20_000
# Writer threads (and connections) on PostgreSQL; each takes a share of the customers.
PG_LANES = 2
# A batch the database (or the points ledger) refuses is retried record by record; COPY raises
# the driver's own errors.
REFUSED = (IntegrityError, DataError, psycopg.DataError, psycopg.IntegrityError, PointsRefusal)
#: A longer line is refused unparsed (Segment documents 32 KB per call).
MAX_LINE = 512 * 1024


@dataclass
class IngestResult:
    read: int = 0
    applied: int = 0
    new_events: int = 0
    rejected: list[str] = field(default_factory=list)
    #: Lines that landed with a value replaced, as `FILE:LINE: warning: ...`.
    warnings: list[str] = field(default_factory=list)


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


def _apply_orm(session: Session, records: list[Record], applying: Applying) -> int:
    """The ORM writer (SQLite): one batch in the caller's transaction; how many events were new."""
    now, order_event, programme = applying.now, applying.order_event, applying.programme
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
    topic_choices.record_identifies(session, records, applying.how)
    session.flush()
    zones = {cid: c.timezone for cid, c in customers.items()}
    programme_outcome = apply_tracks(session, programme, tracks, zones, now)
    tracks.extend(programme_outcome.events)
    for cid, tier in programme_outcome.tiers.items():
        customers[cid].tier = tier
        customers[cid].updated_at = now
    if not tracks:
        return 0
    coupons.redeem_orders(session, tracks, order_event)
    by_key = {t.event_key: t for t in tracks}
    rows = [{**t.row(now), "customer_id": t.customer_id} for t in by_key.values()]
    inserted = [
        by_key[r.event_key]
        for r in insert_ignore(session, Event.__table__, rows, ["event_key"], ["event_key"])
    ]
    _update_facts(session, customers, inserted, order_event, now)
    return len(inserted)


def apply_batch(session: Session, records: list[Record], applying: Applying) -> int:
    """Apply records inside the caller's transaction with the dialect's writer; how many events were new.

    The one writing path of a file's batches and of the tracking API: the same
    rules whichever way a record came. Traits the loyalty programme owns are
    dropped first (`owned_traits`).
    """
    records = owned_traits(applying.programme, records)
    if session.get_bind().dialect.name == "postgresql":
        stage_in(session)
        return apply_pg(session, records, applying)
    return _apply_orm(session, records, applying)


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


def lines_of(handle: BinaryIO) -> Iterator[bytes]:
    """A binary stream's lines, each read at most MAX_LINE + 1 bytes into memory.

    The rest of an over-long line is skipped, so that `_text` reports it without the
    process ever holding it whole.
    """
    while line := handle.readline(MAX_LINE + 1):
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            while (rest := handle.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                pass
        yield line


def _text(raw: str | bytes, number: int) -> str:
    """One line as text: UTF-8 strictly (bytes that are not are reported, never replaced), no BOM."""
    if len(raw) > MAX_LINE:
        raise RecordError(f"longer than {MAX_LINE // 1024} KiB")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RecordError("not UTF-8 text") from None
    return raw.removeprefix("\ufeff") if number == 1 else raw


def _batches(
    lines: Iterable[str | bytes],
    source: str,
    now: dt.datetime,
    result: IngestResult,
    problems: list[tuple[int, str]],
    size: int,
    owned: bool = False,
) -> Iterator[list[tuple[int, Record]]]:
    """Parsed records in batches; `owned`: the loyalty programme sets `tier` (an ingested one is ignored)."""
    batch: list[tuple[int, Record]] = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        result.read += 1
        try:
            record = parse_record(_text(raw, number), now)
        except RecordError as exc:
            problems.append((number, f"{source}:{number}: {exc}"))
            continue
        if isinstance(record, Identify):
            result.warnings.extend(f"{source}:{number}: warning: {w}" for w in record.warnings)
            if owned and "tier" in record.traits:
                result.warnings.append(f"{source}:{number}: warning: {TIER_OWNED}")
        batch.append((number, record))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


Batch = list[tuple[int, Record]]


@dataclass
class _Outcome:
    """What one batch did, handed back to the thread that owns the result."""

    size: int
    applied: int = 0
    new_events: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)


class _Lane:
    """One writer thread and its connection; its batches are applied one at a time, in file order."""

    def __init__(self, executor: ThreadPoolExecutor, connection: Connection) -> None:
        self.executor = executor
        self.connection = connection
        self.pending: Future[_Outcome] | None = None
        self.keys: set[str] = set()


class _Writers:
    """Hands batches to the lanes so that the result is one writer's, batch for batch.

    A batch is split by customer; a customer always falls in the same lane, so
    one customer's records keep their order. Events of different customers that
    share a key keep theirs too: a batch whose parts share an event key is
    applied whole once every lane is idle, and a part waits for another lane's
    batch that holds one of its keys.
    """

    def __init__(
        self,
        lanes: list[_Lane],
        run: Callable[[Connection, Batch], _Outcome],
        done: Callable[[_Outcome], None],
    ) -> None:
        self.lanes = lanes
        self.run = run
        self.done = done

    def submit(self, batch: Batch) -> None:
        parts = _split(batch, len(self.lanes))
        keys = [_event_keys(part) for part in parts]
        if not _disjoint(keys):
            self.drain()
            self._start(self.lanes[0], batch, set().union(*keys))
            self._collect(self.lanes[0])
            return
        for lane, part, part_keys in zip(self.lanes, parts, keys, strict=True):
            if part:
                for other in self.lanes:
                    if other is not lane and not part_keys.isdisjoint(other.keys):
                        self._collect(other)
                self._collect(lane)
                self._start(lane, part, part_keys)

    def drain(self) -> None:
        for lane in self.lanes:
            self._collect(lane)

    def _start(self, lane: _Lane, batch: Batch, keys: set[str]) -> None:
        lane.pending = lane.executor.submit(self.run, lane.connection, batch)
        lane.keys = keys

    def _collect(self, lane: _Lane) -> None:
        if lane.pending is not None:
            outcome = lane.pending.result()
            lane.pending = None
            lane.keys = set()
            self.done(outcome)


def _open_lane(stack: ExitStack, engine: Engine, number: int, on_pg: bool) -> _Lane:
    """A lane keeps one connection for the whole ingest: no checkout, ping or staging per batch."""
    connection = stack.enter_context(engine.connect())
    if on_pg:
        stage(connection)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ingest-{number}")
    return _Lane(stack.enter_context(executor), connection)


def lane_of(customer_id: str, lanes: int) -> int:
    """A stable lane per customer, so one customer's records never race each other."""
    return zlib.crc32(customer_id.encode()) % lanes


def _split(batch: Batch, lanes: int) -> list[Batch]:
    parts: list[Batch] = [[] for _ in range(lanes)]
    for item in batch:
        parts[lane_of(item[1].customer_id, lanes)].append(item)
    return parts


def _event_keys(batch: Batch) -> set[str]:
    return {rec.event_key for _, rec in batch if isinstance(rec, Track)}


def _disjoint(key_sets: list[set[str]]) -> bool:
    seen: set[str] = set()
    for keys in key_sets:
        if not seen.isdisjoint(keys):
            return False
        seen |= keys
    return True


def ingest(
    lines: Iterable[str | bytes],
    source: str,
    session_factory: sessionmaker[Session],
    now: dt.datetime,
    order_event: str = "order_placed",
    progress: Callable[[int], None] | None = None,
    programme: Programme | None = None,
) -> IngestResult:
    """Ingest JSON lines; every bad line is reported as `source:line: reason`, in line order.

    Lines may be bytes (a file or stdin read as binary): each is decoded on its own, so
    bytes that are not UTF-8 cost that line only.

    On PostgreSQL each batch goes through COPY and set-based SQL (`ingest_pg`)
    and is split by customer over `PG_LANES` lanes, each a thread with its own
    connection, so that the server works on several backends at once while this
    thread parses the next batch (see `_Writers` for how order is kept).
    Elsewhere batches go through the ORM on one lane. The rules are the same.
    """
    result = IngestResult()
    problems: list[tuple[int, str]] = []
    engine: Engine = session_factory.kw["bind"]
    on_pg = engine.dialect.name == "postgresql"
    applying = Applying(now, order_event, "ingest", programme)

    def run(connection: Connection, batch: Batch) -> _Outcome:
        outcome = _Outcome(len(batch))
        try:
            with session_factory(bind=connection) as session, session.begin():
                records = [r for _, r in batch]
                outcome.new_events += apply_batch(session, records, applying)
            outcome.applied += len(batch)
        except REFUSED:
            for number, rec in batch:
                try:
                    with session_factory(bind=connection) as session, session.begin():
                        outcome.new_events += apply_batch(session, [rec], applying)
                    outcome.applied += 1
                except REFUSED as exc:
                    text = f"{source}:{number}: {refusal_text(exc)}"
                    outcome.problems.append((number, text))
        return outcome

    def done(outcome: _Outcome) -> None:
        result.applied += outcome.applied
        result.new_events += outcome.new_events
        problems.extend(outcome.problems)
        if progress:
            progress(outcome.size)

    with _collector_paused(), ExitStack() as stack:
        lanes = [_open_lane(stack, engine, n, on_pg) for n in range(PG_LANES if on_pg else 1)]
        writers = _Writers(lanes, run, done)
        size = PG_BATCH if on_pg else BATCH
        owned = programme is not None and programme.tiers is not None
        for batch in _batches(lines, source, now, result, problems, size, owned):
            writers.submit(batch)
        writers.drain()
    result.rejected = [text for _, text in sorted(problems, key=lambda p: p[0])]
    return result


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cycle collector while batches are in flight.

    Parsed records are many small acyclic objects that live for a batch or two;
    the collector's full passes kept re-scanning them (and every imported
    module) for nothing, a quarter of the run. Reference counting still frees
    them; the collector is restored afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def refusal_text(exc: Exception) -> str:
    """The line that says why a record was refused: the ledger's reason, or the database's."""
    if isinstance(exc, PointsRefusal):
        return str(exc)
    return f"refused by the database: {refusal_reason(exc)}"


def refusal_reason(exc: Exception) -> str:
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
