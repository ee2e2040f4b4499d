"""Every benchmark in one run: the scale phases, then each capability's own benchmark.

`python -m tests.bench.run` calls `run_all` after its own phases: each
capability benchmark runs as a child process (its own database and Redis
namespace, dropped at its end) at the run's size, writes its results file,
and gives the rows of one table, which goes into the README between the
BEGIN/END markers with the machine it ran on. Not collected by pytest.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench.run import RESULTS, ROOT

README = ROOT / "README.md"
BEGIN = "<!-- bench:all:begin -->"
END = "<!-- bench:all:end -->"


@dataclass(frozen=True)
class Row:
    figure: str
    ours: str
    target: str
    met: bool


@dataclass(frozen=True)
class Bench:
    """A capability benchmark: its module, its arguments at a size, and its rows from its results."""

    stem: str
    args: Callable[[int, bool], list[str]]
    rows: Callable[[dict[str, Any]], list[Row]]


def _live_rows(r: dict[str, Any]) -> list[Row]:
    a, lat = r["api_ingest"], r["latency"]
    ratio = a["rate"] / a["bare_rate"] if a["bare_rate"] else 0.0
    return [
        Row(
            "tracking API, /v1/batch vs bare Starlette + COPY",
            f"{a['rate']:,.0f} vs {a['bare_rate']:,.0f} events/s: {ratio:.2f}",
            ">= 0.5",
            ratio >= 0.5,
        ),
        Row(
            f"event to provider p50 at {lat['rate_per_s']:.0f}/s",
            f"{lat['p50_s']:.2f} s",
            "< 2 s",
            lat["p50_s"] < 2,
        ),
        Row(
            f"event to provider p99 at {lat['rate_per_s']:.0f}/s",
            f"{lat['p99_s']:.2f} s",
            "< 5 s",
            lat["p99_s"] < 5,
        ),
    ]


def _loyalty_rows(r: dict[str, Any]) -> list[Row]:
    f = r["figures"]
    on, off, rec = f["ingest_on"], f["ingest_off"], f["recompute"]
    scale = f"{r['customers']:,} customers / {r['orders']:,} orders"
    clean = "no differences" in rec["output"]
    return [
        Row(
            f"ingest with the loyalty programme vs without, {scale}",
            f"{on['records_per_s']:,} vs {off['records_per_s']:,} records/s: {f['ratio']:.2f}",
            ">= 0.7",
            f["ratio"] >= 0.7,
        ),
        Row(
            f"loyalty recompute, {scale}",
            f"{rec['seconds']:.1f} s, {rec['peak_rss_mb']:.0f} MB ({'no' if clean else 'some'} differences)",
            "< 60 s, < 300 MB",
            clean and rec["seconds"] < 60 and rec["peak_rss_mb"] < 300,
        ),
    ]


def _insight_rows(r: dict[str, Any]) -> list[Row]:
    x = r["refresh"]
    return [
        Row(
            f"insight refresh, {r['customers']:,} customers / {r['orders']:,} orders",
            f"{x['seconds']:.1f} s, {x['peak_rss_mb']:.0f} MB",
            "< 120 s, < 500 MB",
            x["seconds"] < 120 and x["peak_rss_mb"] < 500,
        )
    ]


def _fast_lane_rows(r: dict[str, Any]) -> list[Row]:
    f = r["fast_lane"]
    return [
        Row(
            f"transactional email behind a {f['backlog']:,}-email campaign backlog, enqueue to provider",
            f"{f['latency_ms'] / 1000:.1f} s",
            "< 5 s",
            f["latency_ms"] < 5000,
        )
    ]


def _dashboard_rows(r: dict[str, Any]) -> list[Row]:
    pages = r["pages_ms"]
    slowest = max(pages, key=pages.__getitem__)
    deliveries = r.get("deliveries", 5 * r["customers"])
    return [
        Row(
            f"dashboard, slowest page ({slowest}), {r['customers']:,} customers / {deliveries:,} deliveries",
            f"{pages[slowest]:.0f} ms",
            "< 300 ms",
            pages[slowest] < 300,
        )
    ]


def _waits_rows(r: dict[str, Any]) -> list[Row]:
    t = r["ticks"]
    without, pending = t["idle_tick_no_waits"]["seconds"], t["idle_tick_with_waits"]["seconds"]
    return [
        Row(
            f"idle tick with {t['pending_waits']:,} waits pending vs none, {r['customers']:,} customers",
            f"{pending:.3f} s vs {without:.3f} s",
            "<= 0.10 s",
            pending <= 0.10,
        )
    ]


def _curve_rows(r: dict[str, Any]) -> list[Row]:
    points = sorted(r["points"].items(), key=lambda kv: int(kv[0]))
    found = [
        Row(
            f"tick at {int(n):,} customers: nothing due / a spike of {p['spike_enrolled']:,} due",
            f"{p['idle_s']:.3f} s / {p['spike_s']:.2f} s (bare INSERT + enqueue {p['bare_spike_s']:.2f} s)",
            "<= 0.10 s / <= 2 s at 1M",
            int(n) != 1_000_000 or (p["idle_s"] <= 0.10 and p["spike_s"] <= 2),
        )
        for n, p in points
    ]
    by_size = dict(points)
    if "1000000" in by_size and "3000000" in by_size:
        growth = by_size["3000000"]["idle_s"] / by_size["1000000"]["idle_s"]
        found.append(Row("idle tick, 3M customers vs 1M", f"{growth:.2f}x", "<= 1.5x", growth <= 1.5))
    return found


BENCHES = (
    Bench("fast_lane", lambda n, _q: ["--backlog", str(n)], _fast_lane_rows),
    Bench("insight", lambda n, _q: ["--customers", str(n), "--orders", str(5 * n)], _insight_rows),
    Bench("dashboard", lambda n, _q: ["--customers", str(n)], _dashboard_rows),
    Bench("loyalty", lambda n, _q: ["--customers", str(n), "--orders", str(5 * n)], _loyalty_rows),
    Bench("live", lambda n, q: ["--customers", str(n), "--seconds", "20" if q else "60"], _live_rows),
    Bench("waits", lambda n, _q: ["--customers", str(n), "--waits", str(n // 20)], _waits_rows),
    Bench("curve", lambda n, q: ["--customers", str(n) if q else f"{n // 10},{n},{3 * n}"], _curve_rows),
)


def run_all(customers: int, quick: bool, note: str, only: set[str] | None) -> dict[str, float]:
    """Run each capability benchmark in a child process; the seconds each took, by name."""
    took: dict[str, float] = {}
    for bench in BENCHES:
        if only is not None and bench.stem not in only:
            continue
        t0 = time.perf_counter()
        cmd = [
            sys.executable,
            "-m",
            f"tests.bench.{bench.stem}",
            *bench.args(customers, quick),
            "--note",
            note,
        ]
        subprocess.run(cmd, cwd=ROOT, check=True)
        took[bench.stem] = time.perf_counter() - t0
        print(f"{bench.stem}: {took[bench.stem]:.1f} s", flush=True)
    return took


def rows() -> list[Row]:
    """The rows of every capability benchmark whose results file is there."""
    found: list[Row] = []
    for bench in BENCHES:
        path = RESULTS / f"{bench.stem}.json"
        if path.exists():
            found += bench.rows(json.loads(path.read_text()))
    return found


def table(core: list[dict[str, Any]], header: str) -> str:
    """The scale phases' rows and the capability rows, as one markdown table under its header."""
    lines = [header, "", "| figure | ours | target | met |", "|---|---|---|---|"]
    for r in core:
        base = "" if r["baseline"] is None else f" (baseline {r['baseline']:,.2f}, ratio {r['ratio']:.2f})"
        lines.append(
            f"| {r['figure']} | {r['ours']:,.2f} {r['unit']}{base} | {r['target']} | {_yes(r['met'])} |"
        )
    lines += [f"| {r.figure} | {r.ours} | {r.target} | {_yes(r.met)} |" for r in rows()]
    return "\n".join(lines) + "\n"


def _yes(met: bool) -> str:
    return "yes" if met else "NO"


def write_readme(text: str, readme: Path = README) -> None:
    """Put the table between the README's markers (they must be there: the section is the README's)."""
    body = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(body):
        raise SystemExit(f"{readme}: no {BEGIN} ... {END} section to write the results into")
    readme.write_text(pattern.sub(lambda _m: f"{BEGIN}\n{text}{END}", body))
