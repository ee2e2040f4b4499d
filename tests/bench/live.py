"""The tracking API's benchmark: `python -m tests.bench.live [--customers N] [--seconds S]`.

Two figures, each in its own fresh PostgreSQL database and Redis namespace:

- API ingest: events/s through `/v1/batch` with 100-event gzipped batches from
  a few client threads, against `automation web`, and against a bare Starlette
  endpoint (`bare_tracking`) that parses the same bodies and COPYs them into
  the same table. Target: at least half the bare rate.
- Event to provider: with the Procfile's processes running (web, scheduler on
  a 60 s interval, a Dramatiq worker) and the `live_thanks` journey, orders
  sent one call each at `--rate` per second; the time from each call's 200 to
  the SendGrid stand-in's acceptance of its thank-you. Targets: p50 < 2 s,
  p99 < 5 s.

Writes tests/bench/results/live.json and live.md. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from automation.store import db
from automation.store.models import Delivery
from tests.bench.phases import clear_namespace, terminate
from tests.bench.run import ROOT, _database, load_average, machine, publish
from tests.bench.standin import TimedSendGrid

BIN = Path(sys.executable).parent
LIVE = ROOT / "tests" / "fixtures" / "live"
BATCH = 100
CLIENTS = 4


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(args, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            terminate(proc)


def _ready(url: str) -> None:
    """Wait until the server answers at all (any status)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


def _key(env: dict[str, str]) -> str:
    made = subprocess.run(
        [str(BIN / "automation"), "keys", "create", "bench"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout.strip()


def _bodies(events: int, customers: int) -> list[bytes]:
    now = dt.datetime.now(dt.UTC).isoformat()
    bodies = []
    for start in range(0, events, BATCH):
        batch = [
            {
                "type": "track",
                "userId": f"c{n % customers}",
                "event": "page_viewed",
                "messageId": f"m-{n}",
                "timestamp": now,
                "properties": {"url": f"/p/{n % 50}", "title": "A page"},
            }
            for n in range(start, min(events, start + BATCH))
        ]
        bodies.append(gzip.compress(json.dumps({"batch": batch}).encode()))
    return bodies


def _post_all(url: str, bodies: list[bytes], key: str | None) -> float:
    """Post every body from `CLIENTS` threads; seconds taken."""
    auth = (key, "") if key else None
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}

    def send(part: list[bytes]) -> None:
        with httpx.Client(base_url=url, timeout=60, auth=auth) as http:
            for body in part:
                reply = http.post("/v1/batch", content=body, headers=headers)
                if reply.status_code != 200:
                    raise RuntimeError(f"{reply.status_code}: {reply.text[:200]}")

    parts = [bodies[i::CLIENTS] for i in range(CLIENTS)]
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(send, parts))
    return time.perf_counter() - started


def _count_events(db_url: str) -> int:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        n = int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())
        conn.execute(text("TRUNCATE events, customers, customer_event_stats"))
        conn.commit()
    engine.dispose()
    return n


def _timed(
    args: list[str], env: dict[str, str], log: Path, port: int, bodies: list[bytes], key: str | None
) -> float:
    """Seconds one server takes to store every body; checks that every event was stored."""
    url = f"http://127.0.0.1:{port}"
    with _process(args, env, log):
        _ready(url)
        seconds = _post_all(url, bodies, key)
    stored = _count_events(env["DATABASE_URL"])
    if stored != len(bodies) * BATCH:
        raise RuntimeError(f"stored {stored} of {len(bodies) * BATCH} events")
    return seconds


def api_ingest(env: dict[str, str], work: Path, customers: int, rounds: int = 2) -> dict[str, Any]:
    """Ours and the bare endpoint in turns, `rounds` times each; the best round of each counts."""
    events = max(2_000, customers * 5) // BATCH * BATCH
    bodies = _bodies(events, customers)
    dsn = make_url(env["DATABASE_URL"]).set(drivername="postgresql").render_as_string(hide_password=False)
    key = _key(env)
    bare_s, ours_s = [], []
    for _ in range(rounds):
        port = _port()
        bare = [sys.executable, "-m", "tests.bench.bare_tracking", dsn, str(port)]
        bare_s.append(_timed(bare, env, work / "bare.log", port, bodies, None))
        port = _port()
        ours = [str(BIN / "automation"), "web", "--host", "127.0.0.1", "--port", str(port)]
        ours_s.append(_timed(ours, env, work / "web.log", port, bodies, key))
    return {
        "events": events,
        "batch": BATCH,
        "rounds": rounds,
        "rate": events / min(ours_s),
        "bare_rate": events / min(bare_s),
    }


def _identify_file(work: Path, customers: int) -> Path:
    path = work / "customers.jsonl"
    with path.open("w") as out:
        for n in range(customers):
            traits = {"email": f"c{n}@example.com", "first_name": f"c{n}"}
            out.write(json.dumps({"type": "identify", "customer_id": f"c{n}", "traits": traits}) + "\n")
    return path


def latency(env: dict[str, str], work: Path, customers: int, rate: float, seconds: float) -> dict[str, Any]:
    calls = min(customers, int(rate * seconds))
    standin = TimedSendGrid().start()
    port = _port()
    url = f"http://127.0.0.1:{port}"
    live = {
        **env,
        "AUTOMATION_JOURNEYS_DIR": str(LIVE / "journeys"),
        "AUTOMATION_TEMPLATES_DIR": str(LIVE / "templates"),
        "AUTOMATION_TICK_INTERVAL_S": "60",
        "SENDGRID_API_KEY": "SG.bench",
        "SENDGRID_API_HOST": standin.url,
        "AUTOMATION_PUBLIC_URL": "https://hooks.example.com",
        "AUTOMATION_UNSUBSCRIBE_SECRET": "bench-unsubscribe-secret-0123456789abcdef",
        "AUTOMATION_POSTAL_ADDRESS": "1 Roastery Lane, Portland OR 97201, USA",
    }
    subprocess.run(
        [str(BIN / "automation"), "ingest", str(_identify_file(work, customers))],
        env={**os.environ, **live},
        check=True,
        capture_output=True,
    )
    key = _key(live)
    answered: dict[str, float] = {}
    lock = threading.Lock()
    procs = [
        ([str(BIN / "dramatiq"), "automation.worker", "--processes", "1", "--threads", "8"], "worker.log"),
        ([str(BIN / "automation"), "scheduler"], "scheduler.log"),
        ([str(BIN / "automation"), "web", "--host", "127.0.0.1", "--port", str(port)], "web.log"),
    ]
    try:
        with (
            _process(procs[0][0], live, work / procs[0][1]),
            _process(procs[1][0], live, work / procs[1][1]),
            _process(procs[2][0], live, work / procs[2][1]),
        ):
            _ready(url)
            time.sleep(2)  # the scheduler's first tick and the worker's boot, before the clock starts
            with httpx.Client(base_url=url, timeout=30, auth=(key, "")) as http:

                def order(n: int) -> None:
                    call = {
                        "userId": f"c{n}",
                        "event": "order_placed",
                        "messageId": f"o-{n}",
                        "properties": {"order_id": f"o-{n}"},
                    }
                    reply = http.post("/v1/track", json=call)
                    if reply.status_code == 200:
                        with lock:
                            answered[f"c{n}"] = time.time()

                started = time.perf_counter()
                with ThreadPoolExecutor(8) as pool:
                    for n in range(calls):
                        pool.submit(order, n)
                        time.sleep(max(0.0, started + (n + 1) / rate - time.perf_counter()))
                deadline = time.monotonic() + 60
                while standin.accepted_count() < len(answered) and time.monotonic() < deadline:
                    time.sleep(0.2)
    finally:
        standin.stop()
    engine = db.make_engine(env["DATABASE_URL"])
    with Session(engine) as s:
        owner = {str(d.id): d.customer_id for d in s.scalars(select(Delivery))}
    engine.dispose()
    waits = sorted(
        at - answered[owner[did]] for did, at in standin.times.items() if owner.get(did) in answered
    )
    if not waits:
        raise RuntimeError("no message reached the stand-in")
    return {
        "calls": calls,
        "answered": len(answered),
        "delivered": len(waits),
        "rate_per_s": rate,
        "p50_s": waits[len(waits) // 2],
        "p99_s": waits[min(len(waits) - 1, int(len(waits) * 0.99))],
    }


def markdown(results: dict[str, Any]) -> str:
    a, lat, m = results["api_ingest"], results["latency"], results["machine"]
    ratio = a["rate"] / a["bare_rate"]
    rows = [
        (
            "API ingest, /v1/batch of 100",
            f"{a['rate']:,.0f} events/s",
            f"{a['bare_rate']:,.0f}",
            f"{ratio:.2f}",
            ">= 0.5",
            ratio >= 0.5,
        ),
        (
            f"event to provider p50 at {lat['rate_per_s']:.0f}/s",
            f"{lat['p50_s']:.2f} s",
            "",
            "",
            "< 2 s",
            lat["p50_s"] < 2,
        ),
        (
            f"event to provider p99 at {lat['rate_per_s']:.0f}/s",
            f"{lat['p99_s']:.2f} s",
            "",
            "",
            "< 5 s",
            lat["p99_s"] < 5,
        ),
    ]
    lines = [
        f"Tracking API benchmark at {results['customers']:,} customers, {results['finished_at']}; "
        f"{a['events']:,} events ingested; {lat['delivered']:,} of {lat['calls']:,} orders thanked; "
        f"machine: {m['cpus']} CPUs, load average {m['load']} at the start ({m['note']}), Python {m['python']}.",
        "",
        "| figure | ours | bare Starlette + COPY | ratio | target | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    lines += [f"| {f} | {o} | {b} | {r} | {t} | {'yes' if ok else 'NO'} |" for f, o, b, r, t, ok in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=50.0, help="orders per second in the latency run")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the latency run sends")
    parser.add_argument("--note", default="2 cores shared with other jobs: timings are noisy")
    args = parser.parse_args()
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    results: dict[str, Any] = {"customers": args.customers, "machine": machine(args.note, load_average())}
    for phase in ("api_ingest", "latency"):
        run = uuid.uuid4().hex[:8]
        namespace = f"automation-bench-{run}"
        url = _database(f"automation_bench_{run}", create=True)
        try:
            engine = db.make_engine(url)
            db.upgrade(engine)
            engine.dispose()
            env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "AUTOMATION_REDIS_NAMESPACE": namespace}
            with tempfile.TemporaryDirectory(prefix="automation-bench-") as work:
                t0 = time.perf_counter()
                if phase == "api_ingest":
                    results[phase] = api_ingest(env, Path(work), args.customers)
                else:
                    results[phase] = latency(env, Path(work), args.customers, args.rate, args.seconds)
                print(f"{phase}: {time.perf_counter() - t0:.1f} s", flush=True)
        finally:
            _database(f"automation_bench_{run}", create=False)
            clear_namespace(redis_url, namespace)
    results["finished_at"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    publish("live", results, markdown(results))


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
