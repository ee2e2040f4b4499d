"""The always-on scheduler: APScheduler runs `tick(now)` every interval until stopped.

Only the tick reads the wall clock. Two schedulers are safe: on PostgreSQL the
tick takes an advisory lock, and unique keys make a repeated pass harmless.
With REDIS_URL set, the web process can wake it for a tick at once (see
`wakeup`); one tick runs at a time either way. After each tick it records the
instant in the database (the web's /healthz reads it). Once a day it runs the
maintenance pass (event retention), and at AUTOMATION_INSIGHT_AT (UTC) the
insight refresh (RFM scores and predictions). A tick that fails (one journey's work, or
the whole pass: the database away) is logged by kind and the next one runs on
time. SIGTERM and SIGINT stop it cleanly after the running tick; an in-process
delivery run (no REDIS_URL) stops after its running messages, leaving the rest
queued for the next start. With
AUTOMATION_METRICS_PORT set it serves Prometheus metrics on that port: tick
duration, the last tick's instant, and the ledger and queue figures the web
process shows.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from types import FrameType

import dramatiq
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from prometheus_client import Histogram, start_http_server

from automation.errors import UserError
from automation.insight.metrics import ledger_registry, redis_client, tick_histogram
from automation.insight.refresh import refresh
from automation.insight.reporting import fold_ledgers
from automation.processes.runtime import Runtime, drain, run_tick
from automation.processes.wakeup import Wakeups
from automation.store import retention
from automation.store.heartbeats import record_tick

log = logging.getLogger("automation.processes.scheduler")


def _tick_metrics(runtime: Runtime) -> Histogram | None:
    """With AUTOMATION_METRICS_PORT set, serve Prometheus metrics there; the tick histogram."""
    port = runtime.settings.metrics_port
    if not port:
        return None
    s = runtime.settings
    registry = ledger_registry(runtime.sessions, redis_client(s.redis_url), s.redis_namespace)
    histogram = tick_histogram(registry)
    try:
        start_http_server(port, registry=registry)
    except OSError as exc:
        raise UserError(f"cannot serve metrics on port {port}: {exc.strerror}") from None
    log.info("metrics on port %d", port)
    return histogram


def daily_at(at: dt.time) -> CronTrigger:
    """Once a day at `at`, UTC (the insight refresh)."""
    return CronTrigger(hour=at.hour, minute=at.minute, second=at.second, timezone=dt.UTC)


def run_scheduler(runtime: Runtime, broker: dramatiq.Broker, embedded: bool) -> None:
    scheduler = BlockingScheduler(timezone=dt.UTC)
    tick_seconds = _tick_metrics(runtime)
    stopping = threading.Event()

    one_at_a_time = threading.Lock()

    def job() -> None:
        with one_at_a_time:
            started = time.perf_counter()
            try:
                report = run_tick(runtime, broker, dt.datetime.now(dt.UTC))
                with runtime.sessions.begin() as s:
                    record_tick(s, dt.datetime.now(dt.UTC))
            except Exception as exc:
                kind = type(getattr(exc, "orig", None) or exc).__name__
                log.error("tick failed with %s; the next tick runs on time", kind)
                return
            if tick_seconds is not None:
                tick_seconds.observe(time.perf_counter() - started)
            log.info("%s", report.summary())
            if embedded and report.enqueued and not drain(broker, stop=stopping):
                log.info("stopped delivering in-process; what is left stays queued")

    def maintenance(days: int) -> None:
        with one_at_a_time:
            removed = retention.apply(runtime.sessions, dt.datetime.now(dt.UTC), days)
        log.info("maintenance: %s", removed.summary())

    scheduler.add_job(
        job,
        "interval",
        seconds=runtime.settings.tick_interval_s,
        next_run_time=dt.datetime.now(dt.UTC),
        id="tick",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
    )

    s = runtime.settings
    if s.event_retention_days is not None:
        scheduler.add_job(
            maintenance,
            "interval",
            args=(s.event_retention_days,),
            days=1,
            next_run_time=dt.datetime.now(dt.UTC),
            id="maintenance",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )

    def insight() -> None:
        with one_at_a_time:
            try:
                # The conversion queue grows with every event until a reader folds it: once a day
                # bounds it on a deployment where nobody opens the dashboard or runs a report.
                fold_ledgers(runtime.sessions, runtime.catalogs.current)
                done = refresh(runtime.sessions, s.order_event, dt.datetime.now(dt.UTC))
            except Exception as exc:
                log.error("insight refresh failed with %s; it runs again tomorrow", type(exc).__name__)
                return
        log.info("insight refresh: %s", done.summary())

    scheduler.add_job(
        insight, daily_at(s.insight_at), id="insight", coalesce=True, max_instances=1, misfire_grace_time=None
    )
    wakeups = Wakeups(s.redis_url, s.redis_namespace, job) if s.redis_url else None

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping after the running tick", signal.Signals(signum).name)
        stopping.set()
        if wakeups is not None:
            wakeups.stop()
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("scheduler started: a tick every %ss", runtime.settings.tick_interval_s)
    if wakeups is not None:
        wakeups.start()
    scheduler.start()
    log.info("scheduler stopped")
