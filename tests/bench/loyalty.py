"""The loyalty benchmark: `python -m tests.bench.loyalty [--customers N] [--orders M]`.

Writes a JSON Lines file of N customers (default 1,000,000) and M orders
(default 5,000,000) over the last two years, each for a customer drawn at
random, 2% of them refunded in part. Then, each on a fresh PostgreSQL database
(dropped at the end) and in a child process: `automation ingest` with a folder
without `loyalty.yaml` (the programme off) and with the shipped one (on), the
ratio of their rates (target >= 0.7); `automation tick` to bring every account
to now (not a figure); and `automation loyalty recompute`, its wall time and
peak RSS (targets under 60 s and 300 MB; the database server's memory is not
counted), which must find no difference. Every instant falls within the hour
that ends five hours before the start, a whole number of days back, so no
activation or expiry falls between the tick and the recompute. Writes tests/bench/results/loyalty.json and
loyalty.md. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.bench.run import ROOT, _database, load_average, machine, publish

BIN = Path(sys.executable).parent / "automation"
DAYS = 730


def write_data(path: Path, customers: int, orders: int, start: dt.datetime, seed: int = 42) -> None:
    """The identify and order lines (and partial refunds), oldest first, as `automation ingest` reads them."""
    rng = random.Random(seed)
    base = start - dt.timedelta(hours=6)  # + up to an hour: see the module docstring
    lines: list[tuple[dt.datetime, str]] = []
    for n in range(1, customers + 1):
        cid = f"c{n:07d}"
        when = (base - dt.timedelta(days=DAYS + 1)).isoformat()
        record = {
            "type": "identify",
            "customer_id": cid,
            "timestamp": when,
            "traits": {"email": f"{cid}@example.com"},
        }
        lines.append((base - dt.timedelta(days=DAYS + 1), json.dumps(record)))
    for n in range(1, orders + 1):
        cid = f"c{rng.randint(1, customers):07d}"
        days = rng.randint(0, DAYS)
        # A second of its own within the hour, so that no two of a customer's events share an instant.
        when = base - dt.timedelta(days=days) + dt.timedelta(seconds=rng.randint(0, 3599))
        total = round(rng.uniform(5, 150), 2)
        order = {"order_id": f"o{n}", "total": total}
        record = {
            "type": "track",
            "customer_id": cid,
            "event": "order_placed",
            "event_id": f"o{n}",
            "timestamp": when.isoformat(),
            "properties": order,
        }
        lines.append((when, json.dumps(record)))
        if rng.random() < 0.02 and days > 0:
            refund = {**record, "event": "order_refunded", "event_id": f"r{n}"}
            refund["timestamp"] = (when + dt.timedelta(days=1)).isoformat()
            refund["properties"] = {"order_id": f"o{n}", "total": round(total / 2, 2)}
            lines.append((when + dt.timedelta(days=1), json.dumps(refund)))
    # In the order things happened, as a shop's export is: the ledger applies events as they arrive.
    lines.sort(key=lambda line: line[0])
    with path.open("w", encoding="utf-8") as out:
        for _days, line in lines:
            out.write(line + "\n")


# A forked child starts with its parent's high-water RSS, and this process held every record it
# wrote: the command is run by a small process of its own, which reports the command's peak.
_PEAK = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as peak:
    peak.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _run(args: list[str], env: dict[str, str], work: Path) -> tuple[float, float, str]:
    """A command in a child process: wall seconds, the command's own peak RSS in MB, and its output."""
    out, err, peak = work / "stdout", work / "stderr", work / "peak"
    t0 = time.perf_counter()
    with out.open("w") as stdout, err.open("w") as stderr:
        command = [sys.executable, "-c", _PEAK, str(peak), str(BIN), *args]
        status = subprocess.run(command, env=env, stdout=stdout, stderr=stderr, check=False).returncode
    seconds = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.read_text()[-2000:]}\n{err.read_text()[-4000:]}")
    return seconds, int(peak.read_text()) / 1024, out.read_text().strip()


def _folder(root: Path, with_programme: bool) -> dict[str, str]:
    journeys, templates = root / "journeys", root / "templates"
    journeys.mkdir(parents=True)
    templates.mkdir()
    if with_programme:
        shutil.copy(ROOT / "journeys" / "loyalty.yaml", journeys / "loyalty.yaml")
    return {"AUTOMATION_JOURNEYS_DIR": str(journeys), "AUTOMATION_TEMPLATES_DIR": str(templates)}


def measure(data: Path, records: int, work: Path) -> dict[str, Any]:
    """Ingest off and on (each on its own database), then tick and recompute on the second."""
    out: dict[str, Any] = {}
    for label, on in (("off", False), ("on", True)):
        name = f"automation_bench_loyalty_{label}_{uuid.uuid4().hex[:8]}"
        url = _database(name, create=True)
        try:
            env = {**os.environ, "DATABASE_URL": url, **_folder(work / label, on)}
            _run(["db", "upgrade"], env, work)
            seconds, _peak, _ = _run(["ingest", str(data)], env, work)
            out[f"ingest_{label}"] = {"seconds": round(seconds, 1), "records_per_s": round(records / seconds)}
            if on:
                out["tick_seconds"] = round(_run(["tick"], env, work)[0], 1)
                seconds, peak, said = _run(["loyalty", "recompute"], env, work)
                out["recompute"] = {
                    "seconds": round(seconds, 1),
                    "peak_rss_mb": round(peak, 1),
                    "output": said,
                }
        finally:
            _database(name, create=False)
    out["ratio"] = round(out["ingest_on"]["records_per_s"] / out["ingest_off"]["records_per_s"], 2)
    return out


def _yes(ok: bool) -> str:
    return "yes" if ok else "no"


def markdown(r: dict[str, Any]) -> str:
    m, f, rc = r["machine"], r["figures"], r["figures"]["recompute"]
    size = f"{r['customers']:,} customers / {r['orders']:,} orders"
    on, off = f["ingest_on"], f["ingest_off"]
    return "\n".join(
        [
            "| figure | ours | target | met |",
            "|---|---|---|---|",
            f"| ingest, programme on / off, {size} | {on['records_per_s']:,} / {off['records_per_s']:,} "
            f"records/s ({on['seconds']} s / {off['seconds']} s): ratio {f['ratio']} | >= 0.7 | {_yes(f['ratio'] >= 0.7)} |",
            f"| loyalty recompute, {size} | {rc['seconds']} s | < 60 s | {_yes(rc['seconds'] < 60)} |",
            f"| its peak RSS | {rc['peak_rss_mb']} MB | < 300 MB | {_yes(rc['peak_rss_mb'] < 300)} |",
            "",
            f"machine: {m['cpus']} CPUs, load average {m['load']} at the start ({m['note']}), "
            f"Python {m['python']}; {r['records']:,} records written in {r['write_seconds']:.0f} s; "
            f"the tick that brought every account to now took {f['tick_seconds']} s.",
            "",
            f"`{rc['output']}`",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=5_000_000)
    parser.add_argument("--note", default="", help="A word on the machine, e.g. shared with other jobs.")
    args = parser.parse_args()
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    load = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-loyalty-") as tmp:
        work = Path(tmp)
        data = work / "loyalty.jsonl"
        t0 = time.perf_counter()
        write_data(data, args.customers, args.orders, start)
        write_seconds = time.perf_counter() - t0
        with data.open("rb") as lines:
            records = sum(1 for _ in lines)
        results = {
            "customers": args.customers,
            "orders": args.orders,
            "records": records,
            "write_seconds": round(write_seconds, 1),
            "figures": measure(data, records, work),
            "machine": machine(args.note, load),
        }
    publish("loyalty", results, markdown(results))


if __name__ == "__main__":
    main()
