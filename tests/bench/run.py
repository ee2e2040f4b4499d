"""Every benchmark: `python -m tests.bench.run [--quick] [--customers N] [--only NAMES]`.

Creates its own PostgreSQL database (dropped at the end) and Redis namespace,
generates the data set, and measures each figure against a bare baseline on
the same data in the same run: ingest vs COPY, the idle and the spike tick vs
INSERT ... SELECT plus Dramatiq's own enqueue loop, workers vs a bare POST-only
actor, 1, 2 and 4 worker processes against linear scaling (the shape of adding
hosts on one Redis and one PostgreSQL), and a campaign to every customer
(tests/bench/results/latest.json and latest.md). Then each capability's own
benchmark at the same size (tests.bench.suite), and one table of every figure
into README.md. Not collected by pytest (no test_ files here).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from automation.store import db
from tests.bench.phases import Config, clear_namespace, run_phase

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[2]


def _admin_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _database(name: str, create: bool) -> str:
    admin = create_engine(make_url(_admin_url()), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if create:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        else:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()
    return make_url(_admin_url()).set(database=name).render_as_string(hide_password=False)


def load_average() -> str:
    """The machine's load average now, as `uptime` prints it: what else ran beside a benchmark."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def machine(note: str, load: str, **more: Any) -> dict[str, Any]:
    """What a benchmark ran on: CPUs, Python, the load average at its start and the runner's word."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "load": load, "note": note, **more}


def publish(stem: str, results: dict[str, Any], text: str) -> None:
    """Write tests/bench/results/STEM.json and STEM.md, and print the markdown."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (RESULTS / f"{stem}.md").write_text(text)
    print(text)


def _ratio(ours: float, base: float) -> float:
    return ours / base if base else 0.0


def summarise(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The table: figure, ours, baseline, ratio, target, met."""
    rows: list[dict[str, Any]] = []

    def add(figure: str, ours: float, unit: str, base: float | None, target: str, met: bool) -> None:
        rows.append(
            {
                "figure": figure,
                "ours": round(ours, 3),
                "unit": unit,
                "baseline": None if base is None else round(base, 3),
                "ratio": None if base is None else round(_ratio(ours, base), 3),
                "target": target,
                "met": met,
            }
        )

    g, i, c = r["generate"], r["ingest"], r["copy_baseline"]
    add("data generation", g["seconds"], f"s for {g['records']} records", None, "-", True)
    add(
        "ingest (automation ingest)",
        i["rate"],
        "records/s",
        c["rate"],
        "ratio >= 0.8",
        _ratio(i["rate"], c["rate"]) >= 0.8,
    )
    t = r["ticks"]
    add(
        "tick, nothing due",
        t["idle_tick"]["seconds"],
        "s",
        None,
        "<= 0.10 s",
        t["idle_tick"]["seconds"] <= 0.10,
    )
    seq = sorted({s for p in t["idle_tick"]["plans"] for s in p["seq_scans"] if s in ("customers", "events")})
    add("idle tick: seq scans on customers/events", len(seq), ", ".join(seq) or "none", None, "0", not seq)
    spike, bare = t["spike_tick"], t["bare"]
    n = spike["enrolled"]
    ours_rate = n / spike["seconds"]
    bare_rate = bare["rows"] / (bare["sql_seconds"] + bare["enqueue_seconds"])
    add(
        f"spike tick: {n} enrolled+delivery+enqueued",
        ours_rate,
        "people/s",
        bare_rate,
        "ratio >= 0.5",
        _ratio(ours_rate, bare_rate) >= 0.5,
    )
    add(
        "spike tick, start to last enqueue",
        spike["seconds"],
        "s",
        None,
        "<= 2 s",
        spike["seconds"] <= 2,
    )
    add(
        "enqueue alone (pipelined vs Dramatiq loop)",
        bare["rows"] / bare["pipelined_enqueue_seconds"],
        "msg/s",
        bare["rows"] / bare["enqueue_seconds"],
        "-",
        True,
    )
    w = r["worker"]
    for lat, least in (("0ms", 0.6), ("100ms", 0.9)):
        ours, base = w[f"ours_{lat}"], w[f"bare_{lat}"]
        add(
            f"worker throughput, provider {lat}",
            ours["rate"],
            "msg/s",
            base["rate"],
            f"ratio >= {least}",
            _ratio(ours["rate"], base["rate"]) >= least,
        )
        add(
            f"worker p50 / p99 latency, {lat}",
            ours.get("p50_ms", 0),
            f"ms (p99 {ours.get('p99_ms', 0):.0f}; bare p50 {base.get('p50_ms', 0):.0f}, p99 {base.get('p99_ms', 0):.0f})",
            None,
            "-",
            True,
        )
    scale = r["workers_scale"]
    most = max(scale["runs"], key=int)
    add(
        f"workers across hosts, provider 100ms: {most} processes vs {most} x one",
        scale["runs"][most]["rate"],
        "msg/s ("
        + ", ".join(f"{n}: {run['rate']:.0f}" for n, run in scale["runs"].items())
        + "; of linear: "
        + ", ".join(f"{n}: {v:.2f}" for n, v in scale["of_linear"].items())
        + ")",
        int(most) * scale["runs"]["1"]["rate"],
        "ratio >= 0.8",
        min(scale["of_linear"].values()) >= 0.8,
    )
    k = r["campaign"]
    add(
        f"campaign command: {k['enrolled']} enrolled (start to exit)",
        k["enrolled"] / k["send_seconds"],
        f"people/s ({k['send_seconds']:.1f} s)",
        None,
        "-",
        True,
    )
    add(
        f"campaign tick: {k['deliveries']} deliveries made and enqueued (start to exit)",
        k["deliveries"] / k["tick_seconds"] if k["tick_seconds"] else 0,
        f"msg/s ({k['tick_seconds']:.1f} s)",
        None,
        "-",
        True,
    )
    cs = r["campaign_send"]
    one, batched = cs["one_per_request"], cs["batched"]
    add(
        f"campaign send, one request per email ({one['messages']} emails)",
        one["rate"],
        "msg/s",
        None,
        "-",
        one["messages"] == one["expected"],
    )
    add(
        f"campaign send, batched ({batched['messages']} emails in {batched['requests']} requests)",
        batched["rate"],
        "msg/s",
        one["rate"],
        "ratio >= 10",
        batched["messages"] == batched["expected"] and _ratio(batched["rate"], one["rate"]) >= 10,
    )
    whole = k["send_seconds"] + k["tick_seconds"] + one["seconds"] + batched["seconds"]
    add(
        f"campaign to {cs['queued']} people: launch to last email accepted",
        whole,
        "s",
        None,
        "<= 150 s",
        whole <= 150,
    )
    add(
        "peak RSS, worker processes during the campaign send",
        max(cs["worker_rss_mb"] or [0]),
        f"MB (each: {cs['worker_rss_mb']})",
        None,
        "<= 120 MB",
        max(cs["worker_rss_mb"] or [0]) <= 120,
    )
    add("peak RSS, campaign command", k["send_rss_mb"], "MB", None, "< 300 MB", k["send_rss_mb"] < 300)
    add("peak RSS, campaign tick process", k["tick_rss_mb"], "MB", None, "< 300 MB", k["tick_rss_mb"] < 300)
    add("peak RSS, tick process", t["rss_mb"], "MB", None, "< 300 MB", t["rss_mb"] < 300)
    add("peak RSS, ingest command", i["rss_mb"], "MB", None, "-", True)
    add(
        "peak RSS, worker processes",
        max(w["ours_rss_mb"] or [0]),
        f"MB (each: {w['ours_rss_mb']})",
        None,
        "-",
        True,
    )
    return rows


def markdown(results: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    m = results["machine"]
    lines = [
        f"Benchmark at {results['customers']:,} customers, seed {results['seed']}, {results['finished_at']}; "
        f"machine: {m['cpus']} CPUs ({m['note']}), Python {m['python']}; whole run {results['total_seconds']:.0f} s.",
        "",
        "| figure | ours | unit | baseline | ratio | target | met |",
        "|---|---:|---|---:|---:|---|---|",
    ]
    for r in rows:
        base = "" if r["baseline"] is None else f"{r['baseline']:,.2f}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(
            f"| {r['figure']} | {r['ours']:,.2f} | {r['unit']} | {base} | {ratio} | {r['target']} | "
            f"{'yes' if r['met'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--customers", type=int, default=None, help="default 1,000,000 (100,000 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="every benchmark at 100,000 customers")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated: core and/or capability benchmarks (default: all of them)",
    )
    parser.add_argument("--no-readme", action="store_true", help="leave README.md's results table as it is")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--spike", type=int, default=50_000, help="customers due at once in the spike tick")
    parser.add_argument("--worker-messages", type=int, default=5_000, help="messages per worker run at 0 ms")
    parser.add_argument("--slow-messages", type=int, default=1_500, help="messages per worker run at 100 ms")
    parser.add_argument(
        "--scale-messages", type=int, default=800, help="messages per worker process in the scale-out runs"
    )
    parser.add_argument(
        "--campaign", type=int, default=None, help="campaign audience cap (default: everyone)"
    )
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--note", default="2 cores shared with other jobs: timings are noisy")
    args = parser.parse_args()
    customers = args.customers or (100_000 if args.quick else 1_000_000)
    only = None if args.only is None else set(args.only.split(","))
    started = time.perf_counter()
    load = load_average()
    if only is None or "core" in only:
        core(args, customers)
    # Imported here: the capability benchmarks import this module's helpers.
    from tests.bench import suite

    took = suite.run_all(customers, args.quick, args.note, only)
    latest = json.loads((RESULTS / "latest.json").read_text())
    header = (
        f"All benchmarks at {customers:,} customers, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{time.perf_counter() - started:.0f} s in all ({', '.join(f'{k} {v:.0f} s' for k, v in took.items())}); "
        f"machine: {os.cpu_count()} CPUs, load average {load} at the start ({args.note}), "
        f"Python {platform.python_version()}."
    )
    text = suite.table(latest["table"], header)
    print(text)
    if not args.no_readme:
        suite.write_readme(text)


def core(args: argparse.Namespace, customers: int) -> None:
    """The scale phases on one data set: ingest, ticks, workers and a campaign (latest.json, latest.md)."""
    run = uuid.uuid4().hex[:8]
    name = f"automation_bench_{run}"
    namespace = f"automation-bench-{run}"
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    started = time.perf_counter()
    url = _database(name, create=True)
    results: dict[str, Any] = {"customers": customers, "seed": args.seed}
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
                customers=customers,
                seed=args.seed,
                now="2026-11-22T12:00:00+00:00",
                spike=args.spike,
                worker_messages=min(args.worker_messages, args.spike // 2),
                slow_messages=min(args.slow_messages, args.spike // 4),
                scale_messages=min(args.scale_messages, args.spike // 20),
                campaign=args.campaign or customers,
                processes=args.processes,
                threads=args.threads,
            )
            phases = (
                "generate",
                "copy_baseline",
                "ingest",
                "ticks",
                "worker",
                "workers_scale",
                "campaign",
                "campaign_send",
            )
            for phase in phases:
                t0 = time.perf_counter()
                results[phase] = run_phase(phase, cfg)
                print(f"{phase}: {time.perf_counter() - t0:.1f} s", flush=True)
    finally:
        _database(name, create=False)
        clear_namespace(redis_url, namespace)
    results["total_seconds"] = time.perf_counter() - started
    results["finished_at"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "note": args.note}
    rows = summarise(results)
    results["table"] = rows
    publish("latest", results, markdown(results, rows))


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
