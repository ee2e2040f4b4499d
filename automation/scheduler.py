"""The always-on scheduler: APScheduler runs `tick(now)` every interval until stopped.

Only the tick reads the wall clock. Two schedulers are safe: on PostgreSQL the
tick takes an advisory lock, and unique keys make a repeated pass harmless.
SIGTERM and SIGINT stop it cleanly after the running tick finishes.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
from types import FrameType

import dramatiq
from apscheduler.schedulers.blocking import BlockingScheduler

from automation.runtime import Runtime, drain, run_tick

log = logging.getLogger("automation.scheduler")


def run_scheduler(runtime: Runtime, broker: dramatiq.Broker, embedded: bool) -> None:
    scheduler = BlockingScheduler(timezone=dt.UTC)

    def job() -> None:
        report = run_tick(runtime, broker, dt.datetime.now(dt.UTC))
        log.info("%s", report.summary())
        if embedded and report.enqueued:
            drain(broker)

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

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping after the running tick", signal.Signals(signum).name)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("scheduler started: a tick every %ss", runtime.settings.tick_interval_s)
    scheduler.start()
    log.info("scheduler stopped")
