"""Prometheus metrics read from the ledger and Redis at scrape time.

`LedgerCollector` counts deliveries by journey, channel and status, webhook
events by provider and type, and the messages waiting on the delivery queue.
Reading them when scraped (rather than counting in each process) gives the
same figures from every process that exposes them: the web process on
`/metrics`, the scheduler on AUTOMATION_METRICS_PORT.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from automation.store.models import Delivery, ProviderEvent

log = logging.getLogger("automation.insight.metrics")

QUEUES = ("deliveries", "deliveries.DQ")


class LedgerCollector(Collector):
    """Delivery and webhook-event counts from the database, queue depth from Redis."""

    def __init__(
        self, sessions: sessionmaker[Session], redis_client: redis.Redis | None, namespace: str
    ) -> None:
        self.sessions = sessions
        self.redis = redis_client
        self.namespace = namespace

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("automation_ledger_up", "1 when the ledger could be read for this scrape.")
        try:
            yield from self._ledger()
            up.add_metric([], 1)
        except SQLAlchemyError as exc:
            log.warning("metrics: cannot read the ledger: %s", type(exc).__name__)
            up.add_metric([], 0)
        yield up
        if self.redis is not None:
            yield from self._queues()

    def _ledger(self) -> Iterator[Metric]:
        deliveries = GaugeMetricFamily(
            "automation_deliveries",
            "Deliveries in the ledger by journey, channel and status.",
            labels=["journey", "channel", "status"],
        )
        events = CounterMetricFamily(
            "automation_webhook_events",
            "Provider webhook events recorded, by provider and event type.",
            labels=["provider", "type"],
        )
        with self.sessions() as s:
            for journey, channel, status, count in s.execute(
                select(Delivery.journey_id, Delivery.channel, Delivery.status, func.count()).group_by(
                    Delivery.journey_id, Delivery.channel, Delivery.status
                )
            ):
                deliveries.add_metric([journey, channel, status], count)
            for provider, kind, count in s.execute(
                select(ProviderEvent.provider, ProviderEvent.event_type, func.count()).group_by(
                    ProviderEvent.provider, ProviderEvent.event_type
                )
            ):
                events.add_metric([provider, kind], count)
        yield deliveries
        yield events

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


def ledger_registry(
    sessions: sessionmaker[Session], redis_url: str | None, namespace: str
) -> CollectorRegistry:
    """A registry holding the ledger collector (the caller adds its own metrics)."""
    registry = CollectorRegistry()
    client = redis.Redis.from_url(redis_url, socket_timeout=2) if redis_url else None
    registry.register(LedgerCollector(sessions, client, namespace))
    return registry


def tick_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "automation_tick_duration_seconds",
        "Time one scheduler tick took.",
        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        registry=registry,
    )
