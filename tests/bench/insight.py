"""The insight benchmark: `python -m tests.bench.insight [--customers N] [--orders M]`.

Creates its own PostgreSQL database (dropped at the end), fills it in SQL with
N customers (default 1,000,000) and M orders (default 5,000,000) spread over
two years, each order for a customer drawn at random, with the order facts
ingest keeps, then runs `automation insight refresh` in a child process and
measures its wall time and peak RSS (the command's own process; the database
server's memory is not counted). Targets: under 2 minutes and 500 MB. Writes
tests/bench/results/insight.json and insight.md. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from automation.store import db
from tests.bench.run import _database, load_average, machine, publish

NOW = "2026-11-22T00:00:00+00:00"
BIN = Path(sys.executable).parent / "automation"

_CUSTOMERS = """
INSERT INTO customers (id, traits, trait_times, email, email_opt_in, sms_opt_in, created_at, updated_at)
SELECT 'c' || lpad(g::text, 7, '0'), '{}', '{}', 'c' || g || '@example.com', true, false, %(now)s, %(now)s
FROM generate_series(1, %(customers)s) g
"""
_ORDERS = """
INSERT INTO events (event_key, customer_id, name, occurred_at, properties, received_at)
SELECT 'o' || g, 'c' || lpad((1 + floor(random() * %(customers)s))::int::text, 7, '0'), 'order_placed',
    %(now)s::timestamptz - random() * interval '730 days',
    jsonb_build_object('total', round((5 + random() * 95)::numeric, 2)), %(now)s
FROM generate_series(1, %(orders)s) g
"""
_FACTS = """
UPDATE customers c SET order_count = o.n, lifetime_value = o.total, last_order_at = o.last_at
FROM (
    SELECT customer_id, count(*) AS n, sum((properties ->> 'total')::numeric) AS total, max(occurred_at) AS last_at
    FROM events GROUP BY customer_id
) o
WHERE c.id = o.customer_id
"""


def fill(url: str, customers: int, orders: int) -> float:
    """The data set, made in the database; returns the seconds it took."""
    t0 = time.perf_counter()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("SELECT setseed(0.42)")
        params = {"customers": customers, "orders": orders, "now": NOW}
        for statement in (_CUSTOMERS, _ORDERS, _FACTS):
            conn.execute(statement, params)
        conn.execute("VACUUM ANALYZE customers")
        conn.execute("VACUUM ANALYZE events")
    return time.perf_counter() - t0


def measure(url: str) -> dict[str, Any]:
    """`automation insight refresh` in a child process: its wall time, peak RSS and output."""
    env = {**os.environ, "DATABASE_URL": url}
    t0 = time.perf_counter()
    done = subprocess.run(
        [str(BIN), "insight", "refresh", "--now", NOW], env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"insight refresh failed:\n{done.stderr[-4000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak, 1), "output": done.stdout.strip()}


def markdown(r: dict[str, Any]) -> str:
    m, f = r["machine"], r["refresh"]
    return "\n".join(
        [
            "| figure | ours | target | met |",
            "|---|---|---|---|",
            f"| insight refresh, {r['customers']:,} customers / {r['orders']:,} orders | {f['seconds']} s "
            f"| < 120 s | {'yes' if f['seconds'] < 120 else 'no'} |",
            f"| its peak RSS | {f['peak_rss_mb']} MB | < 500 MB | {'yes' if f['peak_rss_mb'] < 500 else 'no'} |",
            "",
            f"machine: {m['cpus']} CPUs, load average {m['load']} at the start ({m['note']}), "
            f"Python {m['python']}; data made in {r['fill_seconds']:.0f} s.",
            "",
            f"`{f['output']}`",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=5_000_000)
    parser.add_argument("--note", default="", help="A word on the machine, e.g. shared with other jobs.")
    args = parser.parse_args()
    name = f"automation_bench_insight_{uuid.uuid4().hex[:8]}"
    url = _database(name, create=True)
    try:
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        load = load_average()
        fill_seconds = fill(url, args.customers, args.orders)
        results = {
            "customers": args.customers,
            "orders": args.orders,
            "fill_seconds": round(fill_seconds, 1),
            "refresh": measure(url),
            "machine": machine(args.note, load),
        }
    finally:
        _database(name, create=False)
    publish("insight", results, markdown(results))


if __name__ == "__main__":
    main()
