"""The scale curve: `python -m tests.bench.curve [--customers 100000,1000000,3000000] [--prepare-only]`.

The idle tick and the spike of 50,000 due, from the benchmark's own "ticks"
phase, at each size, as one table: the scheduler's work should grow with the
people due, not with the customers. Each size's data set is kept between runs
(`tests.bench.prepared`); `--prepare-only` makes the missing ones without
measuring, so that only the measuring needs `flock /work/bench.lock`.
A run of some sizes keeps the other sizes' points from the last run (each
point names the load average it ran under). Writes tests/bench/results/curve.{json,md}.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import uuid
from typing import Any

from tests.bench import prepared
from tests.bench.phases import Config, clear_namespace, run_phase
from tests.bench.run import RESULTS, ROOT, load_average, machine, publish


def _config(customers: int, seed: int, spike: int, namespace: str) -> Config:
    return Config(
        db_url="",
        redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        namespace=namespace,
        data_file="",
        workdir="",
        customers=customers,
        seed=seed,
        now="2026-11-22T12:00:00+00:00",
        spike=spike,
        worker_messages=0,
        slow_messages=0,
        campaign=0,
        processes=1,
        threads=1,
    )


def _point(ticks: dict[str, Any]) -> dict[str, Any]:
    idle, spike, bare = ticks["idle_tick"], ticks["spike_tick"], ticks["bare"]
    return {
        "idle_s": round(idle["seconds"], 3),
        "idle_statements": len(idle["plans"]),
        "idle_seq_scans": sorted({s for p in idle["plans"] for s in p["seq_scans"]}),
        "spike_s": round(spike["seconds"], 3),
        "spike_enrolled": spike["enrolled"],
        "spike_enqueued": spike["enqueued"],
        "bare_spike_s": round(bare["sql_seconds"] + bare["pipelined_enqueue_seconds"], 3),
        "warm_s": round(ticks["warm_tick"]["seconds"], 3),
    }


def _earlier(seed: int, spike: int) -> dict[int, dict[str, Any]]:
    """The points of the last run with this seed and spike: a run of some sizes keeps the others."""
    try:
        last = json.loads((RESULTS / "curve.json").read_text())
    except (OSError, ValueError):
        return {}
    if (last.get("seed"), last.get("spike")) != (seed, spike):
        return {}
    return {int(n): p for n, p in last["points"].items()}


def table(points: dict[int, dict[str, Any]], note: str) -> str:
    first = points[min(points)]
    lines = [
        f"Scale curve of the scheduler tick ({note}).",
        "",
        "| customers | idle tick s | x smallest | idle statements | seq scans | spike s | enrolled+enqueued "
        "| x smallest | bare INSERT+enqueue s | load average |",
        "|---:|---:|---:|---:|---|---:|---|---:|---:|---|",
    ]
    for n, p in sorted(points.items()):
        lines.append(
            f"| {n:,} | {p['idle_s']:.3f} | {p['idle_s'] / first['idle_s']:.2f} | {p['idle_statements']} "
            f"| {', '.join(p['idle_seq_scans']) or 'none'} | {p['spike_s']:.2f} "
            f"| {p['spike_enrolled']:,}+{p['spike_enqueued']:,} | {p['spike_s'] / first['spike_s']:.2f} "
            f"| {p['bare_spike_s']:.2f} | {p.get('load', '')} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="100000,1000000,3000000")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--spike", type=int, default=50_000)
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--note", default="2 cores shared with other engineers' jobs")
    args = parser.parse_args()
    sizes = [int(n) for n in args.customers.split(",")]
    run = uuid.uuid4().hex[:8]
    namespace = f"automation-curve-{run}"
    load = load_average()
    points = _earlier(args.seed, args.spike)
    for n in sizes:
        cfg = _config(n, args.seed, args.spike, namespace)
        kept, made = prepared.ensure(cfg)
        if args.prepare_only:
            continue
        try:
            with prepared.copy_of(kept, f"automation_curve_{run}_{n}") as url:
                start = load_average()
                ticks = run_phase("ticks", dataclasses.replace(cfg, db_url=url))
        finally:
            clear_namespace(cfg.redis_url, namespace)
        points[n] = {**_point(ticks), "data_set": made, "load": f"{start} before, {load_average()} after"}
        print(f"{n}: {points[n]}", flush=True)
    if args.prepare_only:
        return
    results = {
        "finished_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(args.note, load),
        "seed": args.seed,
        "spike": args.spike,
        "points": points,
    }
    publish("curve", results, table(points, args.note))


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
