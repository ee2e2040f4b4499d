"""The dashboard benchmark: `python -m tests.bench.dashboard [--customers N]`.

Creates its own PostgreSQL database (dropped at the end), fills it in SQL with
N customers (default 1,000,000), 5 orders and 5 deliveries each (sent over the
last 30 days; one an A/B send of `post_purchase_thanks`, so its journey page
computes an experiment), a provider event for half of them, a KPI snapshot a
day and a campaign, then the folds a reader makes first (the conversion ledger, the
reach, the tallies) and a VACUUM ANALYZE of what they emptied, as autovacuum would
after a bulk load; then times each read page's server work with
`automation.web.dashboard.timing.time_page` (the best of three, after one
warm-up). Target: the slowest page under 300 ms. Writes
tests/bench/results/dashboard.json and dashboard.md. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
import uuid
from typing import Any

import psycopg

from automation.config import load_settings
from automation.definitions.catalog import load_catalog
from automation.insight import reporting
from automation.store import db, tallies
from automation.web.dashboard.app import Dashboard
from automation.web.dashboard.timing import READ_PAGES, time_page
from tests.bench import insight
from tests.bench.run import ROOT, _database, load_average, machine, publish

NOW = dt.datetime.fromisoformat(insight.NOW)
TARGET_MS = 300
PATHS = {"journey": {"journey_id": "post_purchase_thanks"}, "customer": {"customer_id": "c0000042"}}

_ENROLLMENTS = """
INSERT INTO enrollments (journey_id, customer_id, occurrence_key, occurred_at, entered_at, state, context)
SELECT 'post_purchase_thanks', id, 'bench', %(now)s::timestamptz - interval '20 days',
    %(now)s::timestamptz - interval '20 days', 'completed', '{}'
FROM customers
"""
_DELIVERIES = """
INSERT INTO deliveries (enrollment_id, step_id, journey_id, customer_id, channel, template, arm, status,
    due_at, attempts, created_at, updated_at, sent_at, transactional)
SELECT e.id, CASE WHEN k = 0 THEN 'thanks' ELSE 'step-' || k END,
    CASE WHEN k = 0 THEN 'post_purchase_thanks' ELSE 'welcome_series' END,
    e.customer_id, 'email', 'bench', CASE WHEN k = 0 THEN (ARRAY['warm', 'recap'])[1 + (e.id %% 2)] END,
    (ARRAY['sent', 'sent', 'sent', 'skipped', 'failed'])[1 + ((e.id + k) %% 5)],
    %(now)s::timestamptz - random() * interval '30 days', 1, %(now)s, %(now)s, %(now)s, false
FROM enrollments e CROSS JOIN generate_series(0, 4) k
"""
_EVENTS = """
INSERT INTO provider_events (delivery_id, provider, event_type, event_key, occurred_at, payload, received_at)
SELECT id, 'sendgrid', (ARRAY['delivered', 'open'])[1 + (id %% 4 / 2)], 'ev-' || id, due_at + interval '1 minute',
    '{}', due_at
FROM deliveries WHERE id %% 2 = 0 AND status = 'sent'
"""
_SNAPSHOTS = """
INSERT INTO kpi_snapshots (day, taken_at, figures)
SELECT (%(now)s::timestamptz - d * interval '1 day')::date, %(now)s, jsonb_build_object('customers', %(customers)s)
FROM generate_series(0, 29) d
"""
_CAMPAIGN = """
INSERT INTO campaigns (id, journey_id, launched_by, launched_at, audience_size, status)
VALUES ('bench', 'seasonal_offer', 'bench', %(now)s, %(customers)s, 'launched')
"""


#: What the folds empty or rewrite: left unvacuumed, each later fold would scan its dead rows.
FOLDED = (
    "conversion_queue",
    "conversions",
    "reach_changes",
    "reach",
    "reach_tallies",
    "delivery_tallies",
    "provider_event_tallies",
    "enrollment_tallies",
)


def fill(url: str, customers: int) -> float:
    """Customers and orders as the insight benchmark makes them, then the ledger; seconds taken."""
    seconds = insight.fill(url, customers, 5 * customers)
    t0 = time.perf_counter()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        params = {"customers": customers, "now": insight.NOW}
        for statement in (_ENROLLMENTS, _DELIVERIES, _EVENTS, _SNAPSHOTS, _CAMPAIGN):
            conn.execute(statement, params)
        for table in ("enrollments", "deliveries", "provider_events"):
            conn.execute(f"VACUUM ANALYZE {table}")
        engine = db.make_engine(url)
        sessions = db.sessions(engine)
        reporting.fold_ledgers(sessions, load_catalog(ROOT / "journeys", ROOT / "templates"))
        with sessions.begin() as s:
            tallies.compact(s)
        engine.dispose()
        for table in FOLDED:
            conn.execute(f"VACUUM ANALYZE {table}")
    return seconds + time.perf_counter() - t0


def measure(url: str) -> dict[str, float]:
    """Each read page's server time in ms: the best of three after a warm-up."""
    os.environ["DATABASE_URL"] = url
    settings = load_settings().model_copy(
        update={"journeys_dir": ROOT / "journeys", "templates_dir": ROOT / "templates"}
    )
    engine = db.make_engine(url)
    dashboard = Dashboard(settings, db.sessions(engine), lambda: NOW)
    out: dict[str, float] = {}
    for name in READ_PAGES:
        path = {**PATHS.get(name, {}), "campaign_id": "bench"} if name == "campaign" else PATHS.get(name)
        runs = [time_page(dashboard, name, path=path, now=NOW) for _ in range(4)]
        assert all(r.status == 200 for r in runs), (name, runs[0].status)
        out[name] = round(1000 * min(r.seconds for r in runs[1:]), 1)
    engine.dispose()
    return out


def markdown(r: dict[str, Any]) -> str:
    pages, m = r["pages_ms"], r["machine"]
    slowest = max(pages, key=lambda k: pages[k])
    rows = [f"| {name} | {ms} ms |" for name, ms in pages.items()]
    return "\n".join(
        [
            f"Dashboard pages, {r['customers']:,} customers / {5 * r['customers']:,} deliveries "
            f"(server time, best of three):",
            "",
            "| page | server time |",
            "|---|---|",
            *rows,
            "",
            f"slowest: {slowest}, {pages[slowest]} ms (target < {TARGET_MS} ms: "
            f"{'met' if pages[slowest] < TARGET_MS else 'not met'}).",
            f"machine: {m['cpus']} CPUs, load average {m['load']} at the start ({m['note']}), "
            f"Python {m['python']}; data made in {r['fill_seconds']:.0f} s.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--note", default="", help="A word on the machine, e.g. shared with other jobs.")
    args = parser.parse_args()
    name = f"automation_bench_dashboard_{uuid.uuid4().hex[:8]}"
    url = _database(name, create=True)
    try:
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        load = load_average()
        results = {
            "customers": args.customers,
            "fill_seconds": round(fill(url, args.customers), 1),
            "pages_ms": measure(url),
            "machine": machine(args.note, load),
        }
    finally:
        _database(name, create=False)
    publish("dashboard", results, markdown(results))


if __name__ == "__main__":
    main()
