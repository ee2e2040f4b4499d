"""The workers' figures alone: `python -m tests.bench.workers [--customers N]`.

The phases of `tests.bench.run` that the workers' targets read (the data set,
ingest and the ticks first, for the rows they send), without the baselines of
ingest and the tick: single emails against the bare POST-only actor at 0 and
100 ms, 1, 2 and 4 worker processes at 100 ms, and a campaign to everyone from
launch to the last email accepted, with the workers' peak RSS. Writes
tests/bench/results/workers.json and workers.md. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from automation.store import db
from tests.bench.phases import Config, clear_namespace, run_phase
from tests.bench.run import ROOT, _database, load_average, machine, publish

PHASES = ("generate", "ingest", "ticks", "worker", "workers_scale", "campaign", "campaign_send")


def markdown(r: dict[str, Any]) -> str:
    w, scale, k, cs = r["worker"], r["workers_scale"], r["campaign"], r["campaign_send"]
    rows = []
    for lat, target in (("0ms", 0.6), ("100ms", 0.9)):
        ours, bare = w[f"ours_{lat}"]["rate"], w[f"bare_{lat}"]["rate"]
        ratio = ours / bare if bare else 0.0
        rows.append(
            (f"worker, single emails, provider {lat}", f"{ours:,.0f} msg/s", f"{bare:,.0f}", ratio, target)
        )
    one = scale["runs"]["1"]["rate"]
    for n, run in scale["runs"].items():
        rows.append(
            (
                f"workers across hosts, {n} process(es), provider 100ms",
                f"{run['rate']:,.0f} msg/s",
                f"{int(n) * one:,.0f}",
                scale["of_linear"][n],
                0.8,
            )
        )
    whole = (
        k["send_seconds"] + k["tick_seconds"] + cs["one_per_request"]["seconds"] + cs["batched"]["seconds"]
    )
    peak = max(cs["worker_rss_mb"] or [0])
    lines = [
        f"Workers at {r['customers']:,} customers, {r['finished_at']}; machine: {r['machine']['cpus']} CPUs, "
        f"load average {r['machine']['load']} at the start ({r['machine']['note']}), "
        f"Python {r['machine']['python']}; {r['processes']} processes x {r['threads']} threads.",
        "",
        "| figure | ours | baseline | ratio | target | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    lines += [
        f"| {f} | {o} | {b} | {x:.2f} | >= {t} | {'yes' if x >= t else 'NO'} |" for f, o, b, x, t in rows
    ]
    batched = cs["batched"]
    lines += [
        f"| campaign to {cs['queued']:,} people: launch to last email accepted "
        f"(command {k['send_seconds']:.1f} s, tick {k['tick_seconds']:.1f} s, "
        f"{batched['messages']:,} batched in {batched['requests']:,} requests at {batched['rate']:,.0f}/s) "
        f"| {whole:.1f} s | | | <= 150 s | {'yes' if whole <= 150 else 'NO'} |",
        f"| peak RSS of a worker during the campaign (each: {cs['worker_rss_mb']}) | {peak:.1f} MB | | | "
        f"<= 120 MB | {'yes' if peak <= 120 else 'NO'} |",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--spike", type=int, default=50_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--note", default="", help="A word on the machine, e.g. shared with other jobs.")
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    name, namespace = f"automation_bench_{run}", f"automation-bench-{run}"
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    load = load_average()
    url = _database(name, create=True)
    results: dict[str, Any] = {
        "customers": args.customers,
        "processes": args.processes,
        "threads": args.threads,
    }
    try:
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        with tempfile.TemporaryDirectory(prefix="automation-bench-") as work:
            cfg = Config(
                db_url=url,
                redis_url=redis_url,
                namespace=namespace,
                data_file=str(Path(work) / "records.jsonl"),
                workdir=work,
                customers=args.customers,
                seed=args.seed,
                now="2026-11-22T12:00:00+00:00",
                spike=args.spike,
                worker_messages=min(5_000, args.spike // 2),
                slow_messages=min(1_500, args.spike // 4),
                campaign=args.customers,
                processes=args.processes,
                threads=args.threads,
                scale_messages=min(800, args.spike // 20),
            )
            for phase in PHASES:
                t0 = time.perf_counter()
                results[phase] = run_phase(phase, cfg)
                print(f"{phase}: {time.perf_counter() - t0:.1f} s", flush=True)
    finally:
        _database(name, create=False)
        clear_namespace(redis_url, namespace)
    results["finished_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results["machine"] = machine(args.note, load)
    publish("workers", results, markdown(results))


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
