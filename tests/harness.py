"""Drive the real product in-process: ingest, tick at a given `now`, drain real workers.

Uses a real Redis broker in the test's namespace and the real providers built
from settings (the SendGrid and Twilio SDKs against the local stand-ins).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage
from sqlalchemy import select

from automation.config import Settings
from automation.ingest.load import IngestResult, ingest
from automation.processes import worker as worker_module
from automation.processes.runtime import QUEUES, Runtime, build_runtime, drain, run_tick
from automation.processes.tick import TickReport
from automation.store.models import Delivery

BIN = Path(sys.executable).parent / "automation"


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def identify(cid: str, ts: str | None = None, **traits: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"type": "identify", "customer_id": cid, "traits": traits}
    if ts:
        rec["timestamp"] = ts
    return rec


def track(cid: str, event: str, ts: str, event_id: str | None = None, **props: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "type": "track",
        "customer_id": cid,
        "event": event,
        "timestamp": ts,
        "properties": props,
    }
    if event_id:
        rec["event_id"] = event_id
    return rec


class Flow:
    """The product wired to this test's database, Redis namespace and stand-ins."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime: Runtime = build_runtime(settings)
        self.broker = RedisBroker(
            url=settings.redis_url, namespace=settings.redis_namespace, heartbeat_timeout=2000
        )
        self.broker.add_middleware(CurrentMessage())
        dramatiq.set_broker(self.broker)
        worker_module.bind(self.broker)
        self.deliverer = worker_module.build_deliverer(settings)
        worker_module.install(self.deliverer)

    def ingest(self, records: Iterable[dict[str, Any]], now: str = "2026-11-22T12:00:00Z") -> IngestResult:
        lines = [json.dumps(r) for r in records]
        return ingest(lines, "test", self.runtime.sessions, utc(now), self.settings.order_event)

    def tick(self, now: str) -> TickReport:
        return run_tick(self.runtime, self.broker, utc(now))

    def queued_messages(self) -> int:
        return sum(int(self.broker.do_qsize(queue)) for queue in QUEUES)

    def drain(self) -> None:
        drain(self.broker, threads=4)

    def run(self, now: str) -> TickReport:
        report = self.tick(now)
        self.drain()
        return report

    def deliveries(self, **where: Any) -> list[Delivery]:
        with self.runtime.sessions() as s:
            stmt = select(Delivery).order_by(Delivery.id)
            for key, value in where.items():
                stmt = stmt.where(getattr(Delivery, key) == value)
            return list(s.scalars(stmt))

    def close(self) -> None:
        worker_module.install(None)
        self.broker.close()
        self.runtime.engine.dispose()


def cli(
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the installed `automation` command as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [str(BIN), *args], input=stdin, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout
    )
