"""Poisoned customers against real processes: `worker --burst` returns, the scheduler answers SIGTERM.

Before, one customer whose data a template could not take made its message
retry for ever: `automation worker --burst` never returned, and the embedded
scheduler stopped ticking and ignored SIGTERM.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from tests.deliverykit import event, flow, kit_env, kit_settings, person, wait_for
from tests.harness import BIN, Flow, cli

__all__ = ["flow", "kit_env", "kit_settings"]

NOW = "2026-11-22T12:00:00Z"
EARLIER = "2026-11-22T11:00:00Z"


def poisoned(flow: Flow, at: str, now: str) -> None:
    records: list[dict[str, Any]] = []
    for cid, points in {"ada": 5, "ben": 9, "lots": "lots", "huge": 10**9}.items():
        records += [person(cid, points=points), event(cid, "points", at)]
    assert not flow.ingest(records, now=now).rejected


def statuses(flow: Flow) -> dict[str, str]:
    return {d.customer_id: d.status for d in flow.deliveries()}


def test_worker_burst_returns_with_poisoned_customers_in_the_queue(
    flow: Flow, kit_env: dict[str, str]
) -> None:
    poisoned(flow, EARLIER, NOW)
    assert flow.tick(NOW).enqueued == 4
    result = cli("worker", "--burst", env=kit_env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "queue drained" in result.stdout and "Traceback" not in result.stdout + result.stderr
    assert statuses(flow) == {"ada": "sent", "ben": "sent", "lots": "failed", "huge": "failed"}


def test_the_embedded_scheduler_keeps_ticking_past_a_poisoned_journey_and_stops_on_sigterm(
    flow: Flow, kit_env: dict[str, str], tmp_path: Path
) -> None:
    wall = dt.datetime.now(dt.UTC)  # the scheduler ticks at the wall clock
    poisoned(flow, (wall - dt.timedelta(minutes=10)).isoformat(), wall.isoformat())
    log = tmp_path / "scheduler.log"
    env = {**os.environ, **kit_env, "REDIS_URL": "", "AUTOMATION_TICK_INTERVAL_S": "2"}
    proc = subprocess.Popen([str(BIN), "scheduler"], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: len(statuses(flow)) == 4 and "queued" not in statuses(flow).values(), 120)
        assert wait_for(lambda: log.read_text().count("tick at ") >= 2, 60), log.read_text()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text()
    assert code == 0, output
    assert "received SIGTERM" in output and "scheduler stopped" in output
    assert "Traceback" not in output and "lots@example.com" not in output
    assert statuses(flow) == {"ada": "sent", "ben": "sent", "lots": "failed", "huge": "failed"}
