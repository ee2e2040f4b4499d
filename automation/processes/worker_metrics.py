"""Prometheus metrics for `dramatiq automation.worker` (AUTOMATION_WORKER_METRICS=1).

Dramatiq's own `Prometheus` middleware counts messages, retries and durations
and forks an exposition server (port `dramatiq_prom_port`, default 9191) that
merges every worker process's figures. `SendLatency` adds the time each
delivery took, labelled by the status it ended in (`sent` is the send
latency). prometheus_client is imported only once the multiprocess directory
(`dramatiq_prom_db`) is set, as Dramatiq's middleware requires.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# The status the current worker thread's delivery ended in (hooks run on that thread).
_outcome = threading.local()


def note_status(status: str) -> None:
    """Tell the metrics middleware how this thread's delivery ended."""
    _outcome.status = status


class SendLatency(Middleware):
    """A histogram of `deliver` durations by resulting status, in every worker process."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.histogram: Any = None

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        from prometheus_client import Histogram

        self.histogram = Histogram(
            "automation_send_latency_seconds",
            "Time a delivery took in the worker (claim to recorded result), by resulting status.",
            ["status"],
            buckets=BUCKETS,
            registry=None,
        )

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        _outcome.status = None
        self.started[message.message_id] = time.perf_counter()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        started = self.started.pop(message.message_id, None)
        status = getattr(_outcome, "status", None) or "error"
        _outcome.status = None
        if started is None or self.histogram is None:
            return
        if exception is not None:
            status = "retry" if isinstance(exception, dramatiq.Retry) else "error"
        self.histogram.labels(status).observe(time.perf_counter() - started)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self.started.pop(message.message_id, None)


def add_worker_metrics(broker: dramatiq.Broker) -> None:
    """Add both middlewares when this process is Dramatiq's CLI (their hooks need its boot)."""
    if "dramatiq.cli" not in sys.modules:
        return
    from dramatiq.middleware.prometheus import DB_PATH, Prometheus

    # Before anything imports prometheus_client, which picks its storage then
    # (and `after_*` hooks run in reverse order, so SendLatency boots first).
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = DB_PATH
    broker.add_middleware(Prometheus())
    broker.add_middleware(SendLatency())
