"""The fast-lane benchmark: `python -m tests.bench.fast_lane [--backlog N] [--batch-size B]`.

How long one transactional email takes from its enqueue to the provider under
a campaign backlog of N emails (default 1,000,000) already queued for the
workers. Creates its own PostgreSQL database (dropped at the end) and Redis
namespace; the campaign's enrollments and deliveries are made in SQL, their
messages by the enqueuer the tick uses (`enqueue_deliveries`, B emails per
message, default the product's batch size), and the real workers
(`dramatiq automation.worker`) send to a local SendGrid stand-in. Once the
workers are busy on the backlog, one `bench_receipt` delivery is enqueued; the
figure is the time until the stand-in accepts it, with how much of the backlog
was still queued. Writes tests/bench/results/fast_lane.json and fast_lane.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import select

from automation.advance.send import QUEUED, Queued
from automation.processes.enqueue import PipelinedRedisBroker
from automation.processes.runtime import QUEUE, enqueue_deliveries
from automation.store import db
from automation.store.models import Delivery
from tests.bench.phases import HERE, clear_namespace, dramatiq_workers, terminate
from tests.bench.run import _database, load_average, machine, publish
from tests.bench.standin import TimedSendGrid

NOW = "2026-11-22T12:00:00+00:00"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

_CUSTOMERS = """
INSERT INTO customers (id, traits, trait_times, email, email_opt_in, sms_opt_in, timezone,
                       order_count, lifetime_value, created_at, updated_at)
SELECT 'c' || lpad(g::text, 7, '0'), '{}', '{}', 'c' || g || '@example.com', true, false, 'UTC', 0, 0,
       %(now)s, %(now)s
FROM generate_series(0, %(n)s) g
"""
_ENROLLMENTS = """
INSERT INTO enrollments (journey_id, customer_id, occurrence_key, occurred_at, entered_at, state, context)
SELECT CASE WHEN g = 0 THEN 'bench_receipt' ELSE 'bench_campaign' END, 'c' || lpad(g::text, 7, '0'),
       'bench', %(now)s, %(now)s, 'active', '{}'
FROM generate_series(0, %(n)s) g
"""
_DELIVERIES = """
INSERT INTO deliveries (enrollment_id, step_id, journey_id, customer_id, channel, template, transactional,
                        status, due_at, first_due_at, enqueued_at, attempts, created_at, updated_at)
SELECT id, 'step-1', journey_id, customer_id, 'email', 'bench_note', journey_id = 'bench_receipt',
       'queued', %(now)s, %(now)s, %(now)s, 0, %(now)s, %(now)s
FROM enrollments
"""


@dataclass
class Cfg:
    """What `tests.bench.phases.dramatiq_workers` reads."""

    workdir: str
    processes: int
    threads: int


def fill(url: str, backlog: int) -> float:
    """The backlog's customers, enrollments and deliveries, plus the receipt's (customer c0000000)."""
    t0 = time.perf_counter()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        for statement in (_CUSTOMERS, _ENROLLMENTS, _DELIVERIES):
            conn.execute(statement, {"n": backlog, "now": NOW})
        for table in ("customers", "enrollments", "deliveries"):
            conn.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - t0


def _queued(url: str, transactional: bool) -> list[Queued]:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(*QUEUED).where(Delivery.transactional.is_(transactional)).order_by(Delivery.id)
        )
        out = [Queued(*row) for row in rows]
    engine.dispose()
    return out


def _until(done: Callable[[], bool], what: str, timeout_s: float = 600, poll_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(poll_s)


def measure(url: str, namespace: str, backlog: int, batch_size: int, cfg: Cfg) -> dict[str, Any]:
    standin = TimedSendGrid().start()
    broker = PipelinedRedisBroker(url=REDIS_URL, namespace=namespace)
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "AUTOMATION_REDIS_NAMESPACE": namespace,
        "SENDGRID_API_KEY": "SG.bench",
        "SENDGRID_API_HOST": standin.url,
        "AUTOMATION_EMAIL_PROVIDER": "sendgrid",
        "AUTOMATION_JOURNEYS_DIR": str(HERE / "journeys"),
        "AUTOMATION_TEMPLATES_DIR": str(HERE / "templates"),
        # Real sends: the workers refuse to start on unsafe production settings.
        "AUTOMATION_PUBLIC_URL": "https://hooks.example.com",
        "AUTOMATION_UNSUBSCRIBE_SECRET": "bench-unsubscribe-secret-0123456789abcdef",
        "AUTOMATION_POSTAL_ADDRESS": "1 Roastery Lane, Portland OR 97201, USA",
    }
    at = dt.datetime.fromisoformat(NOW)
    t0 = time.perf_counter()
    enqueue_deliveries(broker, _queued(url, False), batch_size, at)
    enqueue_s = time.perf_counter() - t0
    backlog_messages = int(broker.do_qsize(QUEUE))
    (receipt,) = _queued(url, True)
    with dramatiq_workers("automation.worker", env, cfg) as proc:  # type: ignore[arg-type]
        _until(lambda: standin.accepted_count() > 0 or proc.poll() is not None, "the workers to send")
        before = standin.accepted_count()
        sent_at = time.time()
        enqueue_deliveries(broker, [receipt], batch_size, at)
        key = str(receipt.id)
        _until(lambda: key in standin.times or proc.poll() is not None, "the receipt", poll_s=0.005)
        if key not in standin.times:
            raise SystemExit(f"the workers exited; see {cfg.workdir}")
        latency_s = standin.times[key] - standin.delay_s - sent_at
        result = {
            "backlog": backlog,
            "backlog_messages": backlog_messages,
            "enqueue_seconds": round(enqueue_s, 1),
            "accepted_before": before,
            "accepted_at_receipt": standin.accepted_count(),
            "latency_ms": round(latency_s * 1000, 1),
        }
        terminate(proc)
    standin.stop()
    broker.close()
    return result


def markdown(r: dict[str, Any]) -> str:
    f, m = r["fast_lane"], r["machine"]
    left = f["backlog"] - f["accepted_at_receipt"]
    return "\n".join(
        [
            "| figure | ours | target | met |",
            "|---|---|---|---|",
            f"| one transactional email, enqueue to provider, behind a {f['backlog']:,}-email campaign "
            f"({f['backlog_messages']:,} messages; {left:,} emails not yet sent when it was) "
            f"| {f['latency_ms']} ms | before the backlog drains | {'yes' if left > 0 else 'no'} |",
            "",
            f"machine: {m['cpus']} CPUs, load average {m['load']} at the start ({m['note']}), "
            f"Python {m['python']}; {m['processes']} worker processes x {m['threads']} threads; "
            f"data made in {r['fill_seconds']:.0f} s, backlog enqueued in {f['enqueue_seconds']} s.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument(
        "--batch-size", type=int, default=1000, help="Emails per message (the product's default)."
    )
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--note", default="", help="A word on the machine, e.g. shared with other jobs.")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    name, namespace = f"automation_bench_fast_{tag}", f"bench-fast-{tag}"
    url = _database(name, create=True)
    workdir = tempfile.mkdtemp(prefix="bench-fast-")
    try:
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        load = load_average()
        fill_seconds = fill(url, args.backlog)
        cfg = Cfg(workdir, args.processes, args.threads)
        results = {
            "fill_seconds": round(fill_seconds, 1),
            "fast_lane": measure(url, namespace, args.backlog, args.batch_size, cfg),
            "machine": machine(args.note, load, processes=args.processes, threads=args.threads),
        }
    finally:
        clear_namespace(REDIS_URL, namespace)
        _database(name, create=False)
    publish("fast_lane", results, markdown(results))


if __name__ == "__main__":
    main()
