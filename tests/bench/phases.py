"""The benchmark's phases, each run in its own process so that its peak RSS is its own.

`python -m tests.bench.phases NAME CONFIG_JSON` runs one phase and prints its
figures as one JSON line. `tests.bench.run` drives them in order.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import dramatiq
import psycopg
import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine, event, func, select, text

from automation.advance.send import QUEUED, Queued
from automation.config import Settings, load_settings
from automation.ingest.load import ingest
from automation.processes.enqueue import PipelinedRedisBroker, enqueue_many
from automation.processes.runtime import QUEUE, build_runtime, enqueue_deliveries, make_broker, run_tick
from automation.store.models import Delivery
from tests.bench.data import generate, spike_orders
from tests.bench.standin import TimedSendGrid

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


@dataclass
class Config:
    db_url: str
    redis_url: str
    namespace: str
    data_file: str
    workdir: str
    customers: int
    seed: int
    now: str
    spike: int
    worker_messages: int
    slow_messages: int
    campaign: int
    processes: int
    threads: int
    scale_messages: int = 0  # single deliveries per worker process in the scale-out runs

    @property
    def at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.now)


#: When the spike's orders are placed, after the data set's `now`.
SPIKE_AFTER = dt.timedelta(seconds=30)


def rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def settings_for(cfg: Config) -> Settings:
    return load_settings(
        database_url=cfg.db_url,
        redis_url=cfg.redis_url,
        redis_namespace=cfg.namespace,
        journeys_dir=HERE / "journeys",
        templates_dir=HERE / "templates",
    )


def clear_namespace(redis_url: str, namespace: str) -> None:
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{namespace}*", count=1000):
        client.unlink(key)
    client.close()


# ------------------------------------------------------------------ data and ingest


def phase_generate(cfg: Config) -> dict[str, Any]:
    t0 = time.perf_counter()
    counts = generate(Path(cfg.data_file), cfg.customers, cfg.seed, cfg.at)
    return {"seconds": time.perf_counter() - t0, "records": sum(counts.values()), **counts}


_COPY_CUSTOMERS = (
    "id, email, timezone, first_name, tier, signed_up_at, birthday, email_opt_in, sms_opt_in, "
    "traits, trait_times, created_at, updated_at"
)


def phase_copy_baseline(cfg: Config) -> dict[str, Any]:
    """Parse each line with json.loads and COPY the rows into tables shaped (and indexed) like ours."""
    url = cfg.db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("DROP SCHEMA IF EXISTS copy_baseline CASCADE; CREATE SCHEMA copy_baseline")
        admin.execute("CREATE TABLE copy_baseline.customers (LIKE public.customers INCLUDING ALL)")
        admin.execute("CREATE TABLE copy_baseline.events (LIKE public.events INCLUDING ALL)")
    now = cfg.at
    records = 0
    seen: set[str] = set()
    t0 = time.perf_counter()
    with psycopg.connect(url) as c1, psycopg.connect(url) as c2:
        with (
            c1.cursor() as k1,
            c2.cursor() as k2,
            k1.copy(f"COPY copy_baseline.customers ({_COPY_CUSTOMERS}) FROM STDIN") as customers,
            k2.copy(
                "COPY copy_baseline.events (event_key, customer_id, name, occurred_at, properties, received_at) "
                "FROM STDIN"
            ) as events,
            open(cfg.data_file, encoding="utf-8") as lines,
        ):
            for line in lines:
                rec = json.loads(line)
                records += 1
                if rec["type"] == "identify":
                    if rec["customer_id"] in seen:
                        continue
                    seen.add(rec["customer_id"])
                    t = rec["traits"]
                    customers.write_row(
                        (
                            rec["customer_id"],
                            t["email"],
                            t["timezone"],
                            t["first_name"],
                            t["tier"],
                            t["signed_up_at"],
                            t["birthday"],
                            t["email_opt_in"],
                            t["sms_opt_in"],
                            "{}",
                            "{}",
                            now,
                            now,
                        )
                    )
                else:
                    events.write_row(
                        (
                            rec["event_id"],
                            rec["customer_id"],
                            rec["event"],
                            rec["timestamp"],
                            json.dumps(rec["properties"]),
                            now,
                        )
                    )
        c1.commit()
        c2.commit()
    seconds = time.perf_counter() - t0
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("DROP SCHEMA copy_baseline CASCADE")
    return {"seconds": seconds, "records": records, "rate": records / seconds, "rss_mb": rss_mb()}


def phase_ingest(cfg: Config) -> dict[str, Any]:
    """`automation ingest FILE`, the real command, timed; then ANALYZE (not timed).

    With the benchmark's own journeys, as every other phase runs: they have no loyalty
    programme (the loyalty benchmark measures ingest with it against without it).
    """
    env = {
        **os.environ,
        "DATABASE_URL": cfg.db_url,
        "AUTOMATION_JOURNEYS_DIR": str(HERE / "journeys"),
        "AUTOMATION_TEMPLATES_DIR": str(HERE / "templates"),
    }
    t0 = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "automation"), "ingest", cfg.data_file], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"ingest failed: {done.stderr[-2000:]}")
    match = re.search(r"read (\d+) records", done.stdout)
    records = int(match.group(1)) if match else 0
    url = cfg.db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    child_rss = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    return {"seconds": seconds, "records": records, "rate": records / seconds, "rss_mb": child_rss}


# ------------------------------------------------------------------ ticks


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every single (not executemany) statement the engine runs inside the block."""
    seen: list[tuple[str, Any]] = []

    def listen(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if not many:
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def explain(engine: Engine, statements: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """EXPLAIN each captured statement with its parameters; flag sequential scans over big tables."""
    plans = []
    with engine.connect() as conn:
        for statement, params in statements:
            head = statement.lstrip().split(None, 1)[0].upper()
            if head not in ("SELECT", "UPDATE", "INSERT", "WITH") or "advisory" in statement:
                continue
            lines = [row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, params)]
            joined = "\n".join(lines)
            plans.append(
                {
                    "statement": " ".join(statement.split())[:200],
                    "indexes": sorted(set(re.findall(r"(?:using|Index Scan on) (\w+)", joined))),
                    "seq_scans": sorted(set(re.findall(r"Seq Scan on (\w+)", joined))),
                    "plan": lines,
                }
            )
        conn.rollback()
    return plans


def phase_ticks(cfg: Config) -> dict[str, Any]:
    settings = settings_for(cfg)
    runtime = build_runtime(settings)
    broker = make_broker(settings)
    now = cfg.at
    t0 = time.perf_counter()
    warm = run_tick(runtime, broker, now)
    warm_s = time.perf_counter() - t0
    # What autovacuum does within a minute of the warm tick's inserts; done here so that the
    # idle tick is measured with current statistics whenever autovacuum happens to wake up.
    with runtime.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE enrollments")
        conn.exec_driver_sql("ANALYZE deliveries")
        conn.commit()
    with captured(runtime.engine) as statements:
        t0 = time.perf_counter()
        idle = run_tick(runtime, broker, now + dt.timedelta(seconds=1))
        idle_s = time.perf_counter() - t0
    plans = explain(runtime.engine, statements)
    clear_namespace(cfg.redis_url, cfg.namespace)

    with runtime.engine.connect() as conn:
        ids = list(
            conn.scalars(
                text("SELECT id FROM customers WHERE email_opt_in ORDER BY md5(id) LIMIT :n"),
                {"n": cfg.spike},
            )
        )
    spike_at = now + SPIKE_AFTER
    ingest(spike_orders(ids, spike_at), "spike", runtime.sessions, spike_at, settings.order_event)
    t0 = time.perf_counter()
    spike = run_tick(runtime, broker, now + dt.timedelta(seconds=60))
    spike_s = time.perf_counter() - t0
    clear_namespace(cfg.redis_url, cfg.namespace)
    rss = rss_mb()

    with runtime.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE bare_enrollments (LIKE enrollments INCLUDING ALL)")
    t0 = time.perf_counter()
    with runtime.engine.begin() as conn:
        bare_rows = conn.execute(
            text(
                "INSERT INTO bare_enrollments (journey_id, customer_id, occurrence_key, occurred_at, "
                "entered_at, state, next_step_id, next_at, context) "
                "SELECT 'bench_order_thanks', e.customer_id, e.event_key, e.occurred_at, :now, 'active', "
                "'thanks', e.occurred_at, '{}'::jsonb FROM events e JOIN customers c ON c.id = e.customer_id "
                "WHERE e.name = 'order_placed' AND e.occurred_at = :at AND c.email_opt_in "
                "ON CONFLICT DO NOTHING"
            ),
            {"now": now, "at": spike_at},
        ).rowcount
    bare_sql_s = time.perf_counter() - t0
    with runtime.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE bare_enrollments")

    def messages(n: int) -> Iterator[dramatiq.Message]:
        for i in range(n):
            yield dramatiq.Message(queue_name=QUEUE, actor_name="deliver", args=(i,), kwargs={}, options={})

    plain = RedisBroker(url=cfg.redis_url, namespace=f"{cfg.namespace}-plain")
    t0 = time.perf_counter()
    for message in messages(bare_rows):
        plain.enqueue(message)
    bare_enqueue_s = time.perf_counter() - t0
    plain.close()
    clear_namespace(cfg.redis_url, f"{cfg.namespace}-plain")
    piped = PipelinedRedisBroker(url=cfg.redis_url, namespace=f"{cfg.namespace}-piped")
    t0 = time.perf_counter()
    enqueue_many(piped, messages(bare_rows))
    piped_s = time.perf_counter() - t0
    piped.close()
    clear_namespace(cfg.redis_url, f"{cfg.namespace}-piped")
    return {
        "warm_tick": {"seconds": warm_s, "summary": warm.summary()},
        "idle_tick": {"seconds": idle_s, "summary": idle.summary(), "plans": plans},
        "spike_tick": {
            "seconds": spike_s,
            "summary": spike.summary(),
            "enrolled": sum(spike.enrolled.values()),
            "deliveries": spike.deliveries,
            "enqueued": spike.enqueued,
        },
        "bare": {
            "rows": bare_rows,
            "sql_seconds": bare_sql_s,
            "enqueue_seconds": bare_enqueue_s,
            "pipelined_enqueue_seconds": piped_s,
        },
        "rss_mb": rss,
    }


# ------------------------------------------------------------------ workers


def _children_hwm_mb(pid: int) -> list[float]:
    """Peak RSS (VmHWM) of a process and its direct children."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(entry.name))
    out = []
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        m = re.search(r"VmHWM:\s+(\d+) kB", status)
        if m:
            out.append(round(int(m.group(1)) / 1024, 1))
    return out


def _batch(
    broker: PipelinedRedisBroker,
    standin: TimedSendGrid,
    keys: list[str],
    make: Callable[[str], dramatiq.Message],
    timeout_s: float = 600,
) -> dict[str, Any]:
    """Enqueue one message per key at once; wait for all at the stand-in; throughput and latency."""
    t0 = time.time()
    enqueue_many(broker, (make(k) for k in keys))
    deadline = time.time() + timeout_s
    seen, last_progress = 0, time.time()
    # Stop when all arrived, at the deadline, or after 30 s without a new acceptance.
    while time.time() < deadline and time.time() - last_progress < 30:
        with standin.count_lock:
            arrived = sum(1 for k in keys if k in standin.times)
        if arrived == len(keys):
            break
        if arrived > seen:
            seen, last_progress = arrived, time.time()
        time.sleep(0.1)
    with standin.count_lock:
        done = sorted(standin.times[k] - t0 for k in keys if k in standin.times)
    if not done:
        return {"messages": 0, "rate": 0.0}
    return {
        "messages": len(done),
        "expected": len(keys),
        "seconds": done[-1],
        "rate": len(done) / done[-1],
        "p50_ms": 1000 * done[len(done) // 2],
        "p99_ms": 1000 * done[min(len(done) - 1, int(len(done) * 0.99))],
    }


@contextmanager
def dramatiq_workers(
    module: str, env: dict[str, str], cfg: Config, processes: int | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`dramatiq MODULE` with the configured threads, and `processes` (default the configured number)."""
    count = str(processes or cfg.processes)
    with (Path(cfg.workdir) / f"{module}.log").open("ab") as log:
        proc = subprocess.Popen(
            [str(BIN / "dramatiq"), module, "--processes", count, "--threads", str(cfg.threads)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            yield proc
        finally:
            terminate(proc)


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, a minute to finish, then SIGKILL."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _worker_env(cfg: Config, standin: TimedSendGrid) -> dict[str, str]:
    """The product's workers as deployed, pointed at the stand-in (no rate limit is set by default)."""
    return {
        "DATABASE_URL": cfg.db_url,
        "REDIS_URL": cfg.redis_url,
        "AUTOMATION_REDIS_NAMESPACE": cfg.namespace,
        "SENDGRID_API_KEY": "SG.bench",
        "SENDGRID_API_HOST": standin.url,
        "AUTOMATION_EMAIL_PROVIDER": "sendgrid",
        "AUTOMATION_JOURNEYS_DIR": str(HERE / "journeys"),
        "AUTOMATION_TEMPLATES_DIR": str(HERE / "templates"),
        # What a worker refuses to start without (`require_safe_to_send`).
        "AUTOMATION_PUBLIC_URL": "https://hooks.example.com",
        "AUTOMATION_UNSUBSCRIBE_SECRET": "bench-unsubscribe-secret-0123456789abcdef",
        "AUTOMATION_POSTAL_ADDRESS": "1 Roastery Lane, Portland OR 97201, USA",
    }


def _spike_rows(cfg: Config, n: int, newest: bool = False) -> list[str]:
    """Ids of `n` queued thank-you rows of the spike (the warm tick's are days late, so skipped as stale).

    The oldest first, or the newest: two phases take theirs from the two ends.
    """
    engine = build_runtime(settings_for(cfg)).engine
    order = "DESC" if newest else "ASC"
    with engine.connect() as conn:
        ids = [
            str(i)
            for i in conn.scalars(
                text(
                    "SELECT id FROM deliveries WHERE status = 'queued' AND journey_id = 'bench_order_thanks' "
                    f"AND due_at >= :spike ORDER BY id {order} LIMIT :n"
                ),
                {"n": n, "spike": cfg.at + SPIKE_AFTER},
            )
        ]
    engine.dispose()
    return ids


def _deliver(key: str) -> dramatiq.Message:
    """The message the tick makes for one delivery."""
    return dramatiq.Message(queue_name=QUEUE, actor_name="deliver", args=(int(key),), kwargs={}, options={})


def phase_worker(cfg: Config) -> dict[str, Any]:
    standin = TimedSendGrid().start()
    warm_n = 20
    ids = _spike_rows(cfg, warm_n + cfg.worker_messages + cfg.slow_messages)
    env = _worker_env(cfg, standin)
    broker = PipelinedRedisBroker(url=cfg.redis_url, namespace=cfg.namespace)
    fast = ids[warm_n : warm_n + cfg.worker_messages]
    slow = ids[warm_n + cfg.worker_messages :]
    result: dict[str, Any] = {}
    with dramatiq_workers("automation.worker", env, cfg) as proc:
        _batch(broker, standin, ids[:warm_n], _deliver, timeout_s=120)
        result["ours_0ms"] = _batch(broker, standin, fast, _deliver)
        standin.delay_s = 0.1
        result["ours_100ms"] = _batch(broker, standin, slow, _deliver)
        result["ours_rss_mb"] = _children_hwm_mb(proc.pid)
    clear_namespace(cfg.redis_url, cfg.namespace)

    body = Path(cfg.workdir) / "body.json"
    body.write_text(json.dumps(standin.first_body))
    bare_ns = f"{cfg.namespace}-bare"
    bare_env = {
        "BENCH_REDIS_URL": cfg.redis_url,
        "BENCH_NAMESPACE": bare_ns,
        "BENCH_SENDGRID_HOST": standin.url,
        "BENCH_BODY": str(body),
    }
    bare_broker = PipelinedRedisBroker(url=cfg.redis_url, namespace=bare_ns)

    def bare(key: str) -> dramatiq.Message:
        return dramatiq.Message(
            queue_name="bare", actor_name="bare_post", args=(int(key),), kwargs={}, options={}
        )

    base = 10**9
    standin.delay_s = 0.0
    with dramatiq_workers("tests.bench.bare_worker", bare_env, cfg) as proc:
        _batch(bare_broker, standin, [str(base + i) for i in range(warm_n)], bare, timeout_s=120)
        keys = [str(base + warm_n + i) for i in range(len(fast))]
        result["bare_0ms"] = _batch(bare_broker, standin, keys, bare)
        standin.delay_s = 0.1
        keys = [str(2 * base + i) for i in range(len(slow))]
        result["bare_100ms"] = _batch(bare_broker, standin, keys, bare)
        result["bare_rss_mb"] = _children_hwm_mb(proc.pid)
    clear_namespace(cfg.redis_url, bare_ns)
    standin.stop()
    result["rss_mb"] = rss_mb()
    return result


#: Worker processes in the scale-out figure: each stands for one more host on the same Redis and PostgreSQL.
SCALE_OUT = (1, 2, 4)


def phase_workers_scale(cfg: Config) -> dict[str, Any]:
    """Throughput at a 100 ms provider with 1, 2 and 4 worker processes, each run on its own rows.

    Each process gets `scale_messages` single deliveries, so each run lasts about as
    long; linear scaling would multiply the rate by the number of processes.
    """
    standin = TimedSendGrid().start()
    standin.delay_s = 0.1
    warm_n = 20
    ids = _spike_rows(cfg, sum(warm_n + cfg.scale_messages * n for n in SCALE_OUT), newest=True)
    env = _worker_env(cfg, standin)
    broker = PipelinedRedisBroker(url=cfg.redis_url, namespace=cfg.namespace)
    runs: dict[str, Any] = {}
    for n in SCALE_OUT:
        warm, ids = ids[:warm_n], ids[warm_n:]
        mine, ids = ids[: cfg.scale_messages * n], ids[cfg.scale_messages * n :]
        with dramatiq_workers("automation.worker", env, cfg, processes=n):
            _batch(broker, standin, warm, _deliver, timeout_s=120)
            runs[str(n)] = _batch(broker, standin, mine, _deliver)
    clear_namespace(cfg.redis_url, cfg.namespace)
    standin.stop()
    one = runs[str(SCALE_OUT[0])]["rate"]
    linear = {n: run["rate"] / (int(n) * one) if one else 0.0 for n, run in runs.items()}
    return {"runs": runs, "of_linear": linear, "threads": cfg.threads}


# ------------------------------------------------------------------ campaign


def _child(args: list[str], env: dict[str, str], log: Path) -> tuple[float, str, float]:
    """Run one command to the end: (wall seconds, its stdout, its own peak RSS in MB).

    `wait4` reports the resources of that one child, where RUSAGE_CHILDREN would
    report the largest of every child this phase has waited for.
    """
    t0 = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[1:3])} failed:\n{out[-2000:]}\n{log.read_text()[-2000:]}")
    return seconds, out, round(usage.ru_maxrss / 1024, 1)


def _count(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    return int(match.group(1)) if match else 0


def phase_campaign(cfg: Config) -> dict[str, Any]:
    """`automation campaign send` as a user runs it, then one `automation tick` as the scheduler would.

    Each is its own process, timed from start to exit, with its own peak RSS. With
    REDIS_URL set the command only enrolls; the tick makes the deliveries and enqueues them.
    """
    env = {
        **os.environ,
        "DATABASE_URL": cfg.db_url,
        "REDIS_URL": cfg.redis_url,
        "AUTOMATION_REDIS_NAMESPACE": cfg.namespace,
        "AUTOMATION_JOURNEYS_DIR": str(HERE / "journeys"),
        "AUTOMATION_TEMPLATES_DIR": str(HERE / "templates"),
    }
    now = (cfg.at + dt.timedelta(minutes=2)).isoformat()
    send = [str(BIN / "automation"), "campaign", "send", "bench_campaign", "--yes"]
    send += ["--campaign-id", "bench-campaign", "--now", now]
    if cfg.campaign < cfg.customers:
        ids = Path(cfg.workdir) / "campaign_ids.txt"
        with psycopg.connect(cfg.db_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            rows = conn.execute("SELECT id FROM customers ORDER BY id LIMIT %s", (cfg.campaign,))
            ids.write_text("".join(f"{cid}\n" for (cid,) in rows))
        send += ["--customers", str(ids)]
    work = Path(cfg.workdir)
    send_s, send_out, send_rss = _child(send, env, work / "campaign_send.log")
    tick = [str(BIN / "automation"), "tick", "--now", now]
    tick_s, tick_out, tick_rss = _child(tick, env, work / "campaign_tick.log")
    clear_namespace(cfg.redis_url, cfg.namespace)
    return {
        "enrolled": _count(r"enrolled (\d+) new", send_out),
        "send_seconds": send_s,
        "send_rss_mb": send_rss,
        "tick_seconds": tick_s,
        "deliveries": _count(r"new deliveries (\d+)", tick_out),
        "enqueued": _count(r"enqueued (\d+)", tick_out),
        "tick_rss_mb": tick_rss,
    }


def _counts(standin: TimedSendGrid) -> tuple[int, int]:
    """Recipients and requests the stand-in has accepted so far."""
    with standin.count_lock:
        return len(standin.times), standin.requests


def _wait_accepted(
    standin: TimedSendGrid, n: int, t0: float, since: tuple[int, int], stall_s: float = 30
) -> dict[str, Any]:
    """Wait until the stand-in accepted `n` more recipients than at `since` (or progress stalls)."""
    base, requests = since
    seen, last_progress = 0, time.time()
    while time.time() - last_progress < stall_s:
        with standin.count_lock:
            arrived = len(standin.times) - base
        if arrived >= n:
            break
        if arrived > seen:
            seen, last_progress = arrived, time.time()
        time.sleep(0.2)
    with standin.count_lock:
        arrived = len(standin.times) - base
        last = max(standin.times.values(), default=t0)
        requests = standin.requests - requests
    seconds = max(last - t0, 1e-9)
    return {
        "messages": arrived,
        "expected": n,
        "requests": requests,
        "seconds": seconds,
        "rate": arrived / seconds,
    }


def phase_campaign_send(cfg: Config) -> dict[str, Any]:
    """The campaign's queued emails through the real workers: a sample one request each, the rest batched.

    The messages are made by the enqueuer the tick uses (`enqueue_deliveries`), first with batches
    off for a sample, then with the default batch size for everyone else.
    """
    standin = TimedSendGrid().start()
    settings = settings_for(cfg)
    runtime = build_runtime(settings)
    broker = PipelinedRedisBroker(url=cfg.redis_url, namespace=cfg.namespace)
    columns = QUEUED
    with runtime.engine.connect() as conn:
        total = conn.scalar(
            select(func.count()).where(Delivery.journey_id == "bench_campaign", Delivery.status == "queued")
        )
    sample = min(2_000, (total or 0) // 10)

    def enqueue(batch_size: int, limit: int | None) -> None:
        """Still-queued rows, oldest first (the sample is sent by the time the rest is read)."""
        stmt = (
            select(*columns)
            .where(Delivery.journey_id == "bench_campaign", Delivery.status == "queued")
            .order_by(Delivery.id)
            .limit(limit)
            .execution_options(yield_per=50_000)
        )
        with runtime.sessions() as s:
            for part in s.execute(stmt).partitions():
                enqueue_deliveries(broker, [Queued(*row) for row in part], batch_size)

    result: dict[str, Any] = {"queued": total}
    with dramatiq_workers("automation.worker", _worker_env(cfg, standin), cfg) as proc:
        t0, since = time.time(), _counts(standin)
        enqueue(1, sample)
        result["one_per_request"] = _wait_accepted(standin, sample, t0, since)
        # Workers start on the first messages while the rest are still being read and enqueued.
        t0, since = time.time(), _counts(standin)
        enqueue(settings.email_batch_size, None)
        result["batched"] = _wait_accepted(standin, (total or 0) - sample, t0, since)
        result["worker_rss_mb"] = _children_hwm_mb(proc.pid)
    clear_namespace(cfg.redis_url, cfg.namespace)
    standin.stop()
    return result


PHASES: dict[str, Callable[[Config], dict[str, Any]]] = {
    "generate": phase_generate,
    "copy_baseline": phase_copy_baseline,
    "ingest": phase_ingest,
    "ticks": phase_ticks,
    "worker": phase_worker,
    "workers_scale": phase_workers_scale,
    "campaign": phase_campaign,
    "campaign_send": phase_campaign_send,
}


def main() -> None:
    name, raw = sys.argv[1], sys.argv[2]
    cfg = Config(**json.loads(raw))
    result = PHASES[name](cfg)
    result.setdefault("rss_mb", rss_mb())
    print(json.dumps(result, default=str))


def run_phase(name: str, cfg: Config) -> dict[str, Any]:
    """Run one phase in a fresh interpreter; returns its figures."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.phases", name, json.dumps(asdict(cfg))],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    main()
