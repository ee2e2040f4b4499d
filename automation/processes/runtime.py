"""Building the live objects from settings: engine, catalog, broker, providers.

Entry points (the CLI, the Dramatiq worker module, the scheduler) call these;
nothing here runs at import. The journey catalog is live: each tick reloads a
changed folder and records the catalog's version, which workers compare with
their own before they call a journey or step gone.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.errors import QueueJoinTimeout
from dramatiq.middleware import CurrentMessage
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from automation.advance.send import Queued
from automation.config import Settings, existing_folder
from automation.core.statuses import Channel
from automation.definitions.catalog import Catalog, LiveCatalog
from automation.processes.enqueue import PipelinedRedisBroker, enqueue_many
from automation.processes.tick import TickReport, tick
from automation.store import catalog_versions, db

#: The bulk queue: marketing journeys and campaigns.
QUEUE = "deliveries"
#: The fast lane: messages of `transactional: true` journeys (receipts), never behind a campaign backlog.
FAST_QUEUE = "transactional"
#: Every queue a worker serves, fast lane first.
QUEUES = (FAST_QUEUE, QUEUE)
BATCH_ACTOR = "deliver_batch"
FAST_ACTOR = "deliver_transactional"
#: Dramatiq actor priorities (lower runs first): of the messages a worker has fetched, the
#: fast lane's go to the next free thread before any bulk one.
FAST_PRIORITY = 0
BULK_PRIORITY = 10


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    catalogs: LiveCatalog

    @property
    def catalog(self) -> Catalog:
        """The catalog as last loaded (a tick reloads it first)."""
        return self.catalogs.current


def open_database(
    settings: Settings, pre_ping: bool = True, prepare: bool = True
) -> tuple[Engine, sessionmaker[Session]]:
    """Connect and check that the schema is current (`db.make_engine` says what the flags do)."""
    engine = db.make_engine(settings.database_url, pre_ping, prepare)
    db.require_schema(engine)
    return engine, db.sessions(engine)


def live_catalog(settings: Settings, sessions: sessionmaker[Session]) -> LiveCatalog:
    """The settings' journeys and templates, validated, reloading when the folders change."""
    return LiveCatalog(
        existing_folder(settings.journeys_dir, "AUTOMATION_JOURNEYS_DIR", "journeys"),
        existing_folder(settings.templates_dir, "AUTOMATION_TEMPLATES_DIR", "templates"),
        newest=catalog_versions.reader(sessions),
        check_every_s=settings.catalog_check_s,
        locale=settings.default_locale,
        timezone=settings.default_timezone,
    )


def build_runtime(settings: Settings, pre_ping: bool = True) -> Runtime:
    engine, sessions = open_database(settings, pre_ping)
    return Runtime(settings, engine, sessions, live_catalog(settings, sessions))


def make_broker(settings: Settings) -> dramatiq.Broker:
    """Redis when REDIS_URL is set, else Dramatiq's in-process stub broker.

    The Redis broker's heartbeat timeout and maintenance chance decide how fast
    a dead worker's unacknowledged messages come back; the defaults (60 s and
    0.1%) can take hours on a quiet queue, so they are settings here.
    """
    if settings.redis_url:
        broker: dramatiq.Broker = PipelinedRedisBroker(
            url=settings.redis_url,
            namespace=settings.redis_namespace,
            heartbeat_timeout=settings.heartbeat_timeout_ms,
            maintenance_chance=settings.maintenance_chance,
        )
    else:
        broker = StubBroker()
    broker.add_middleware(CurrentMessage())
    return broker


def delivery_messages(
    queued: Sequence[Queued], batch_size: int, at: dt.datetime | None = None
) -> Iterator[dramatiq.Message]:
    """The messages for these deliveries: emails of one journey step in batches, the rest one each.

    Transactional deliveries go on the fast lane (`FAST_QUEUE`, actor `FAST_ACTOR`), and first.
    `at`, the enqueuing tick's `now`, rides along as the `tick_at` option: the
    worker stamps `claimed_at` on that clock (`automation.processes.worker.claim_instant`).
    """
    options = {"tick_at": at.isoformat()} if at is not None else {}

    def message(ids: list[int], fast: bool) -> dramatiq.Message:
        arg: int | list[int]
        if fast:
            queue, actor, arg = FAST_QUEUE, FAST_ACTOR, ids
        elif len(ids) == 1:
            queue, actor, arg = QUEUE, "deliver", ids[0]
        else:
            queue, actor, arg = QUEUE, BATCH_ACTOR, ids
        return dramatiq.Message(queue_name=queue, actor_name=actor, args=(arg,), kwargs={}, options=options)

    groups: dict[tuple[bool, str, str, int], list[int]] = {}
    for q in sorted(queued, key=lambda q: not q.transactional):
        batched = q.channel == Channel.EMAIL and batch_size > 1
        key = (bool(q.transactional), q.journey_id, q.step_id, 0 if batched else q.id)
        groups.setdefault(key, []).append(q.id)
    for (fast, *_), ids in groups.items():
        for start in range(0, len(ids), batch_size):
            yield message(ids[start : start + batch_size], fast)


def enqueue_deliveries(
    broker: dramatiq.Broker, queued: Sequence[Queued], batch_size: int, at: dt.datetime | None = None
) -> None:
    """Enqueue the deliveries' messages (pipelined on Redis, see `automation.processes.enqueue`)."""
    enqueue_many(broker, delivery_messages(queued, batch_size, at))


def run_tick(runtime: Runtime, broker: dramatiq.Broker, now: dt.datetime) -> TickReport:
    """Reload changed journeys, record the catalog's version, then tick with it."""
    s = runtime.settings
    catalog = runtime.catalogs.refresh(force=True)
    with runtime.sessions.begin() as session:
        catalog_versions.record(session, catalog.version, list(catalog.journeys), now)
    return tick(
        runtime.engine,
        runtime.sessions,
        catalog,
        now,
        lambda queued: enqueue_deliveries(broker, queued, s.email_batch_size, now),
        default_tz=s.default_timezone,
        global_holdout_pct=s.global_holdout_pct,
        sweep_grace=dt.timedelta(seconds=s.sweep_grace_s),
        claim_lease=dt.timedelta(seconds=s.claim_lease_s),
    )


#: How often a drain looks at its stop signal while it waits for the queue.
JOIN_POLL_MS = 200


def _join(broker: dramatiq.Broker, queue: str) -> None:
    if isinstance(broker, StubBroker):
        broker.join(queue, fail_fast=False, timeout=JOIN_POLL_MS)
    else:
        broker.join(queue, timeout=JOIN_POLL_MS)


def drain(broker: dramatiq.Broker, threads: int = 8, stop: threading.Event | None = None) -> bool:
    """Process everything queued (and any retries it schedules), then stop: `--burst`.

    Returns False when `stop` was set first (SIGTERM): the running messages
    finish, the rest stay queued.
    """
    from dramatiq.common import dq_name

    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    queues = [name for queue in QUEUES for name in (queue, dq_name(queue))]
    try:
        while stop is None or not stop.is_set():
            try:
                for queue in queues:
                    _join(broker, queue)
            except QueueJoinTimeout:
                continue
            worker.join()
            if not any(_pending(broker, queue) for queue in queues):
                return True
        return False
    finally:
        worker.stop()


def _pending(broker: dramatiq.Broker, queue: str) -> int:
    if isinstance(broker, StubBroker):
        q = broker.queues.get(queue)
        return q.qsize() if q is not None else 0
    return int(broker.do_qsize(queue))  # type: ignore[attr-defined]
