"""Pending `wait_for` steps at scale: `python -m tests.bench.waits [--customers N] [--waits W]`.

On the benchmark's data set (a copy of the kept one, `tests.bench.prepared`), with the
benchmark's journeys plus one abandoned-cart journey: the idle tick before any
wait, the tick that parks W checkouts at a `wait_for`, the idle tick with the
W waits pending (the figure the issue bounds: the last benchmark's idle tick),
and the tick after 1,000 orders arrive, half of them for waited carts (the
early wake). The journey has no `exit_on`, so that the orders reach the wake rather
than the exits pass (which runs first, as in the shipped `abandoned_cart`).
Writes tests/bench/results/waits.json and waits.md. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, func, select

from automation.config import load_settings
from automation.ingest.load import ingest
from automation.processes.runtime import build_runtime, make_broker, run_tick
from automation.store.models import EnrollmentWait
from tests.bench import prepared
from tests.bench.data import customer_id
from tests.bench.phases import HERE, Config, clear_namespace
from tests.bench.run import ROOT, load_average, machine, publish

CART = """id: bench_cart
name: Abandoned cart (benchmark)
trigger: {event: {name: checkout_started, lookback: 1d}}
quiet_hours: false
frequency_cap: false
steps:
  - wait_for:
      id: paid
      event: order_placed
      match: [cart_id]
      within: 4h
      timed_out:
        - send: {id: reminder, channel: email, template: bench_note}
"""
ORDERS = 1000


def _track(cid: str, event: str, key: str, at: dt.datetime, cart: str) -> str:
    record = {
        "type": "track",
        "customer_id": cid,
        "event": event,
        "event_id": key,
        "timestamp": at.isoformat(),
        "properties": {"cart_id": cart, "total": 19.5},
    }
    return json.dumps(record)


def _timed(label: str, out: dict[str, Any], fn: Any, engine: Engine) -> Any:
    """Run one tick; its time, summary and its three slowest statements."""
    spent: list[tuple[float, str]] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["t0"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        spent.append((time.perf_counter() - conn.info.pop("t0"), " ".join(statement.split())[:160]))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    t0 = time.perf_counter()
    try:
        report = fn()
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    slowest = [(round(s, 3), sql) for s, sql in sorted(spent, reverse=True)[:3]]
    out[label] = {
        "seconds": round(time.perf_counter() - t0, 3),
        "summary": report.summary(),
        "slowest": slowest,
    }
    print(f"{label}: {out[label]['seconds']} s  {out[label]['summary']}", flush=True)
    for s, sql in slowest:
        print(f"    {s} s  {sql}", flush=True)
    return report


def measure(cfg: Config, waits: int, journeys: Path) -> dict[str, Any]:
    settings = load_settings(
        database_url=cfg.db_url,
        redis_url=cfg.redis_url,
        redis_namespace=cfg.namespace,
        journeys_dir=journeys,
        templates_dir=HERE / "templates",
    )
    runtime, broker = build_runtime(settings), make_broker(settings)
    now, out = cfg.at, {}
    _timed("warm_tick", out, lambda: run_tick(runtime, broker, now), runtime.engine)
    with runtime.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    _timed(
        "idle_tick_no_waits",
        out,
        lambda: run_tick(runtime, broker, now + dt.timedelta(seconds=1)),
        runtime.engine,
    )
    checkout_at = now + dt.timedelta(seconds=30)
    shoppers = [customer_id(n) for n in range(0, cfg.customers, max(1, cfg.customers // waits))][:waits]
    lines = [_track(c, "checkout_started", f"co-{c}", checkout_at, f"cart-{c}") for c in shoppers]
    ingest(lines, "bench", runtime.sessions, checkout_at, settings.order_event)
    _timed(
        "parking_tick", out, lambda: run_tick(runtime, broker, now + dt.timedelta(seconds=60)), runtime.engine
    )
    with runtime.sessions() as s:
        out["pending_waits"] = s.scalar(select(func.count()).select_from(EnrollmentWait))
    with runtime.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    clear_namespace(cfg.redis_url, cfg.namespace)
    idle = now + dt.timedelta(seconds=61)
    _timed("idle_tick_with_waits", out, lambda: run_tick(runtime, broker, idle), runtime.engine)
    paid_at = now + dt.timedelta(minutes=10)
    orders = [
        _track(c, "order_placed", f"paid-{c}", paid_at, f"cart-{c}" if n % 2 == 0 else "another-cart")
        for n, c in enumerate(shoppers[:ORDERS])
    ]
    ingest(orders, "bench", runtime.sessions, paid_at, settings.order_event)
    woken = _timed(
        "wake_tick", out, lambda: run_tick(runtime, broker, paid_at + dt.timedelta(seconds=5)), runtime.engine
    )
    out["woken"] = woken.woken
    clear_namespace(cfg.redis_url, cfg.namespace)
    runtime.engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--waits", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--note", default="", help="A word on the machine, e.g. shared with other jobs.")
    args = parser.parse_args()
    load = load_average()
    run = uuid.uuid4().hex[:8]
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    namespace = f"automation-bench-{run}"
    results: dict[str, Any] = {"customers": args.customers, "waits": args.waits}
    cfg = Config(
        db_url="",
        redis_url=redis_url,
        namespace=namespace,
        data_file="",
        workdir="",
        customers=args.customers,
        seed=args.seed,
        now="2026-11-22T12:00:00+00:00",
        spike=0,
        worker_messages=0,
        slow_messages=0,
        campaign=0,
        processes=1,
        threads=1,
    )
    kept, results["data_set"] = prepared.ensure(cfg)
    try:
        with (
            prepared.copy_of(kept, f"automation_waits_{run}") as url,
            tempfile.TemporaryDirectory(prefix="automation-bench-") as work,
        ):
            journeys = Path(work) / "journeys"
            shutil.copytree(HERE / "journeys", journeys)
            (journeys / "cart.yaml").write_text(CART, encoding="utf-8")
            results["ticks"] = measure(dataclasses.replace(cfg, db_url=url), args.waits, journeys)
    finally:
        clear_namespace(redis_url, namespace)
    results["finished_at"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    results["machine"] = machine(args.note, load)
    t = results["ticks"]
    publish(
        "waits",
        results,
        f"Pending waits at {args.customers:,} customers / {t['pending_waits']:,} waits: idle tick "
        f"{t['idle_tick_no_waits']['seconds']:.3f} s without, {t['idle_tick_with_waits']['seconds']:.3f} s with; "
        f"parking tick {t['parking_tick']['seconds']:.1f} s; wake tick {t['wake_tick']['seconds']:.2f} s "
        f"({t['woken']} woken). Load average {load} at the start ({args.note}).\n",
    )


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
