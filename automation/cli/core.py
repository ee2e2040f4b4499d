"""Operations: schema, ingest, tick, worker, scheduler."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import redis
import typer

from automation.cli.app import app, console, err_console, parse_now
from automation.cli.options import instant
from automation.cli.output import warning_summary
from automation.config import load_settings, require_safe_to_send
from automation.definitions.loader import load_programme
from automation.errors import JourneyError, UserError
from automation.ingest.load import ingest as run_ingest
from automation.ingest.load import lines_of
from automation.processes.runtime import build_runtime, drain, open_database, run_tick
from automation.store import db

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest revision."""
    settings = load_settings()
    engine = db.make_engine(settings.database_url)
    revision = db.upgrade(engine)
    console.print(f"schema at revision {revision} on {db.safe_url(settings.database_url)}")


@app.command()
def ingest(
    file: Annotated[
        str,
        typer.Argument(metavar="FILE", help="A JSON Lines file of identify/track records, or - for stdin."),
    ],
) -> None:
    """Load identify/track records into customer state (idempotent)."""
    settings = load_settings()
    programme, problems = load_programme(settings.journeys_dir)
    if problems:
        raise JourneyError(problems)
    _, sessions = open_database(settings)
    if file == "-":
        source, stream = "<stdin>", sys.stdin.buffer
        result = run_ingest(
            lines_of(stream), source, sessions, parse_now(None), settings.order_event, programme=programme
        )
    else:
        source, path = file, Path(file)
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise UserError(f"cannot read {file}: {exc.strerror}") from None
        with handle:
            result = run_ingest(
                lines_of(handle), source, sessions, parse_now(None), settings.order_event, programme=programme
            )
    for problem in [*warning_summary(result.warnings, source), *result.rejected]:
        err_console.print(problem, highlight=False, markup=False)
    warned = f", {len(result.warnings)} with a warning" if result.warnings else ""
    console.print(
        f"read {result.read} records: applied {result.applied} ({result.new_events} new events), "
        f"rejected {len(result.rejected)}{warned}"
    )
    if result.rejected:
        raise typer.Exit(1)


@app.command()
def tick(
    now: Annotated[str | None, instant("Evaluate at this instant (default: now).")] = None,
) -> None:
    """Evaluate every journey once at NOW and enqueue what is due.

    Without REDIS_URL (the embedded default) the deliveries are also sent in-process.
    Exits 1 when a journey's work failed (named in the summary); the others still ran.
    """
    at = parse_now(now)
    settings = load_settings()
    if settings.redis_url:
        require_redis(settings.redis_url)
    from automation.processes.worker import broker, install

    runtime = build_runtime(settings)
    report = run_tick(runtime, broker, at)
    if now is None:  # on the wall clock: a cron deployment's tick counts for /healthz
        from automation.store.heartbeats import record_tick

        with runtime.sessions.begin() as s:
            record_tick(s, dt.datetime.now(dt.UTC))
    console.print(report.summary())
    if settings.embedded_broker and report.enqueued:
        from automation.processes.worker import build_deliverer

        install(build_deliverer(settings))
        drain(broker)
        console.print("delivered in-process (no REDIS_URL set)")
    if report.failed:
        raise typer.Exit(1)


@app.command()
def worker(
    burst: Annotated[bool, typer.Option("--burst", help="Process what is queued, then exit.")] = False,
    processes: Annotated[int, typer.Option(metavar="N", min=1, help="Worker processes (always-on).")] = 2,
    threads: Annotated[int, typer.Option(metavar="N", min=1, help="Threads per process.")] = 8,
) -> None:
    """Run the delivery workers (always-on: `dramatiq automation.worker`)."""
    settings = load_settings()
    if settings.redis_url:
        require_redis(settings.redis_url)
    from automation.processes.worker import broker, build_deliverer, install

    deliverer = build_deliverer(settings)
    if burst:
        install(deliverer)
        drain(broker, threads=threads)
        console.print("queue drained")
        return
    if settings.embedded_broker:
        raise UserError("the always-on worker needs REDIS_URL; without it, `automation tick` delivers")
    require_safe_to_send(settings)
    exe = shutil.which("dramatiq") or "dramatiq"
    args = [exe, "automation.worker", "--processes", str(processes), "--threads", str(threads)]
    os.execvp(exe, args)


@app.command()
def scheduler() -> None:
    """Run the tick every AUTOMATION_TICK_INTERVAL_S seconds until stopped (SIGTERM)."""
    settings = load_settings()
    require_safe_to_send(settings)
    from automation.processes.scheduler import run_scheduler
    from automation.processes.worker import broker, build_deliverer, install

    if settings.redis_url:
        require_redis(settings.redis_url)
    runtime = build_runtime(settings)
    if settings.embedded_broker:
        install(build_deliverer(settings))
    run_scheduler(runtime, broker, embedded=settings.embedded_broker)


def require_redis(url: str) -> None:
    """Refuse to start when Redis does not answer, rather than fail on every tick."""
    parts = urlsplit(url)
    where = parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot reach Redis at {where} (REDIS_URL): {reason}") from None
    finally:
        client.close()
