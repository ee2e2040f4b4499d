"""Prometheus metrics read from the ledger and Redis when scraped.

`LedgerCollector` counts deliveries by journey, channel and status, webhook
events by provider and type, the instant of the last tick, and the messages
waiting on the delivery queue. Reading them from the shared stores (rather than
counting in each process) gives the same figures from every process that
exposes them: the web process on `/metrics`, the scheduler on
AUTOMATION_METRICS_PORT. The ledger figures are sums of the tallies the database
keeps of its two largest tables (`automation.store.tallies`), read at most once
every `LEDGER_MAX_AGE_S` however often (or by however many scrapers) the page is
fetched; each read first folds what the tallies appended since the last fold.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import redis
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from automation.loyalty import coupons
from automation.store import tallies
from automation.store.heartbeats import last_tick

log = logging.getLogger("automation.insight.metrics")

QUEUES = ("deliveries", "deliveries.DQ")
LEDGER_MAX_AGE_S = 5.0


@dataclass(frozen=True)
class LedgerFigures:
    """One read of the ledger: (journey, channel, status, n), (provider, type, n), last tick, coupons left."""

    deliveries: list[tuple[str, str, str, int]]
    events: list[tuple[str, str, int]]
    last_tick: dt.datetime | None
    coupons_left: dict[str, int] = field(default_factory=dict)


def read_ledger(sessions: sessionmaker[Session]) -> LedgerFigures:
    """The figures, summed from the ledger's tallies after folding what was appended since the last fold."""
    with sessions.begin() as s:
        tallies.compact(s)
    with sessions() as s:
        deliveries = tallies.counted(s, tallies.DELIVERIES, ("journey_id", "channel", "status"))
        events = tallies.counted(s, tallies.PROVIDER_EVENTS, ("provider", "event_type"))
        return LedgerFigures(
            [(j, str(c), str(st), n["n"]) for (j, c, st), n in deliveries.items()],
            [(p, k, n["n"]) for (p, k), n in events.items()],
            last_tick(s),
            {p.pool: p.left for p in coupons.status(s, dt.datetime.now(dt.UTC))},
        )


@dataclass(eq=False)  # a registry keys its collectors by identity
class LedgerCollector(Collector):
    """Delivery and webhook-event counts from the database (cached), queue depth from Redis."""

    sessions: sessionmaker[Session]
    redis: redis.Redis | None
    namespace: str
    max_age_s: float = LEDGER_MAX_AGE_S
    clock: Callable[[], float] = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _cached: tuple[float, LedgerFigures] | None = field(default=None, init=False, repr=False)

    def figures(self) -> LedgerFigures:
        """The ledger as last read, read again once older than `max_age_s` (one reader at a time)."""
        with self._lock:
            now = self.clock()
            if self._cached is None or now - self._cached[0] >= self.max_age_s:
                self._cached = (now, read_ledger(self.sessions))
            return self._cached[1]

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("automation_ledger_up", "1 when the ledger could be read for this scrape.")
        try:
            yield from self._ledger(self.figures())
            up.add_metric([], 1)
        except SQLAlchemyError as exc:
            log.warning("metrics: cannot read the ledger: %s", type(exc).__name__)
            up.add_metric([], 0)
        yield up
        if self.redis is not None:
            yield from self._queues()

    @staticmethod
    def _ledger(figures: LedgerFigures) -> Iterator[Metric]:
        deliveries = GaugeMetricFamily(
            "automation_deliveries",
            "Deliveries in the ledger by journey, channel and status.",
            labels=["journey", "channel", "status"],
        )
        for journey, channel, status, count in figures.deliveries:
            deliveries.add_metric([journey, channel, status], count)
        events = CounterMetricFamily(
            "automation_webhook_events",
            "Provider webhook events recorded, by provider and event type.",
            labels=["provider", "type"],
        )
        for provider, kind, count in figures.events:
            events.add_metric([provider, kind], count)
        yield deliveries
        yield events
        left = GaugeMetricFamily(
            "automation_coupons_left",
            "Coupon codes each pool can still give (neither assigned nor expired).",
            labels=["pool"],
        )
        for pool, count in sorted(figures.coupons_left.items()):
            left.add_metric([pool], count)
        yield left
        if figures.last_tick is not None:
            yield GaugeMetricFamily(
                "automation_last_tick_timestamp_seconds",
                "When the last scheduler tick finished (Unix time).",
                value=figures.last_tick.timestamp(),
            )

    def _queues(self) -> Iterator[Metric]:
        assert self.redis is not None
        depth = GaugeMetricFamily(
            "automation_queue_messages",
            "Delivery messages on Redis not yet acknowledged (ready, in flight or delayed).",
            labels=["queue"],
        )
        try:
            for queue in QUEUES:
                depth.add_metric([queue], int(self.redis.hlen(f"{self.namespace}:{queue}.msgs")))
        except RedisError as exc:
            log.warning("metrics: cannot read the queue depth: %s", type(exc).__name__)
            return
        yield depth


def redis_client(url: str | None) -> redis.Redis | None:
    """A client for reading figures and health, quick to give up; None without REDIS_URL."""
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) if url else None


def ledger_registry(
    sessions: sessionmaker[Session], client: redis.Redis | None, namespace: str
) -> CollectorRegistry:
    """A registry holding the ledger collector (the caller adds its own metrics)."""
    registry = CollectorRegistry()
    registry.register(LedgerCollector(sessions, client, namespace))
    return registry


def tick_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "automation_tick_duration_seconds",
        "Time one scheduler tick took.",
        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        registry=registry,
    )
