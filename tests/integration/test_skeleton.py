"""The walking skeleton end to end: ingest, tick, Redis, worker, SendGrid SDK to the stand-in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
from sqlalchemy import create_engine, func, select, text

from automation.config import Settings
from automation.processes.runtime import QUEUE
from automation.store.models import Customer, Delivery, Enrollment, Event
from tests.deliverykit import wait_for
from tests.harness import BIN, Flow, cli, identify, track
from tests.standins import SendGridStandIn

NOW = "2026-11-22T12:00:00Z"


@pytest.fixture
def flow(settings: Settings) -> Iterator[Flow]:
    f = Flow(settings)
    yield f
    f.close()


def ada() -> dict:
    return identify(
        "c1",
        "2026-01-01T00:00:00Z",
        email="ada@example.com",
        first_name="Ada",
        timezone="Europe/Paris",
        email_opt_in=True,
    )


def test_order_is_thanked_once_two_hours_later(flow: Flow, sendgrid: SendGridStandIn) -> None:
    flow.ingest(
        [ada(), track("c1", "order_placed", "2026-11-22T09:00:00Z", "o-1", total=42.5, currency="EUR")]
    )

    report = flow.tick(NOW)
    assert report.deliveries == 1 and report.enqueued == 1
    assert flow.queued_messages() == 1  # the message sits on Redis until a worker takes it
    [row] = flow.deliveries()
    assert row.status == "queued"

    flow.drain()
    [row] = flow.deliveries()
    assert row.status == "sent"
    [request] = sendgrid.accepted
    [mail] = sendgrid.messages()
    assert row.provider_message_id == "sg-1"
    assert mail["to"] == "ada@example.com"
    assert mail["custom_args"]["delivery_id"] == str(row.id)
    assert mail["subject"] == "Thank you for your order, Ada"
    text, html = mail["text"], mail["html"]
    assert "Hi Ada," in text and "42.50 EUR" in text
    assert "Hi Ada," in html and "42.50 EUR" in html
    assert request.headers["Authorization"] == "Bearer SG.test-key"

    # A second tick, or the same message delivered again, sends nothing more.
    assert flow.tick("2026-11-22T12:05:00Z").deliveries == 0
    flow.broker.enqueue(
        dramatiq.Message(queue_name=QUEUE, actor_name="deliver", args=(row.id,), kwargs={}, options={})
    )
    flow.drain()
    assert len(sendgrid.accepted) == 1


def test_the_wait_counts_from_the_order_time(flow: Flow, sendgrid: SendGridStandIn) -> None:
    flow.ingest([ada(), track("c1", "order_placed", "2026-11-22T11:00:00Z", "o-2", total=10)])
    assert flow.tick(NOW).deliveries == 0
    assert flow.tick("2026-11-22T12:59:00Z").deliveries == 0
    assert flow.tick("2026-11-22T13:00:00Z").deliveries == 1
    flow.drain()
    assert len(sendgrid.accepted) == 1


def test_orders_older_than_the_lookback_are_never_thanked(flow: Flow, sendgrid: SendGridStandIn) -> None:
    flow.ingest([ada(), track("c1", "order_placed", "2026-11-19T11:59:00Z", "o-old", total=10)])
    flow.run(NOW)
    assert flow.deliveries() == []
    assert sendgrid.accepted == []


def test_each_order_is_thanked_once(flow: Flow, sendgrid: SendGridStandIn) -> None:
    flow.ingest(
        [
            ada(),
            track("c1", "order_placed", "2026-11-22T08:00:00Z", "o-a", total=10),
            track("c1", "order_placed", "2026-11-22T09:00:00Z", "o-b", total=20),
        ]
    )
    flow.run(NOW)
    flow.run("2026-11-22T12:01:00Z")
    assert len(sendgrid.messages()) == 2
    with flow.runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Enrollment)) == 2


def test_two_concurrent_ticks_create_one_delivery(flow: Flow, sendgrid: SendGridStandIn) -> None:
    from concurrent.futures import ThreadPoolExecutor

    flow.ingest([ada(), track("c1", "order_placed", "2026-11-22T09:00:00Z", "o-1", total=42.5)])
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: flow.tick(NOW), range(4)))
    flow.drain()
    assert len(flow.deliveries()) == 1
    assert len(sendgrid.accepted) == 1


# ----------------------------------------------------------------- the CLI


def test_db_upgrade_on_postgresql_and_sqlite(empty_pg_url: str, tmp_path: Path) -> None:
    pg = cli("db", "upgrade", env={"DATABASE_URL": empty_pg_url})
    assert pg.returncode == 0, pg.stderr
    assert "schema at revision" in pg.stdout
    lite = cli("db", "upgrade", env={"DATABASE_URL": ""}, cwd=tmp_path)
    assert lite.returncode == 0, lite.stderr
    assert (tmp_path / "automation.db").exists()
    again = cli("db", "upgrade", env={"DATABASE_URL": empty_pg_url})
    assert again.returncode == 0


def test_ingest_cli_is_idempotent_and_reports_bad_lines(env: dict[str, str], tmp_path: Path, engine) -> None:
    data = tmp_path / "records.jsonl"
    lines = [
        json.dumps(ada()),
        json.dumps(track("c1", "order_placed", "2026-11-22T09:00:00Z", "o-1", total=42.5)),
        "{not json",
        json.dumps({"type": "track", "event": "order_placed", "timestamp": "2026-11-22T09:00:00Z"}),
        json.dumps(track("c2", "order_placed", "2026-11-21T09:00:00Z", total=5)),
    ]
    data.write_text("\n".join(lines) + "\n")
    first = cli("ingest", str(data), env=env)
    assert first.returncode == 1
    assert f"{data}:3: not JSON" in first.stderr
    assert f"{data}:4: missing customer_id" in first.stderr
    assert "Traceback" not in first.stderr
    assert "applied 3 (2 new events), rejected 2" in first.stdout
    second = cli("ingest", str(data), env=env)
    assert "applied 3 (0 new events)" in second.stdout
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Event)) == 2
        ada_row = conn.execute(
            select(Customer.order_count, Customer.lifetime_value).where(Customer.id == "c1")
        ).one()
        assert ada_row.order_count == 1 and float(ada_row.lifetime_value) == 42.5

    stdin = cli(
        "ingest",
        "-",
        stdin=json.dumps(track("c3", "order_placed", "2026-11-22T09:00:00Z", "o-9")) + "\n",
        env=env,
    )
    assert stdin.returncode == 0 and "1 new events" in stdin.stdout


def test_tick_and_worker_burst_from_the_command_line(
    env: dict[str, str], tmp_path: Path, sendgrid: SendGridStandIn
) -> None:
    data = tmp_path / "records.jsonl"
    data.write_text(
        json.dumps(ada())
        + "\n"
        + json.dumps(track("c1", "order_placed", "2026-11-22T09:00:00Z", "o-1", total=42.5))
        + "\n"
    )
    assert cli("ingest", str(data), env=env).returncode == 0
    ticked = cli("tick", "--now", NOW, env=env)
    assert ticked.returncode == 0, ticked.stderr
    assert "new deliveries 1" in ticked.stdout and "enqueued 1" in ticked.stdout
    assert sendgrid.accepted == []  # with Redis, the tick only enqueues
    burst = cli("worker", "--burst", env=env)
    assert burst.returncode == 0, burst.stderr
    assert len(sendgrid.accepted) == 1
    assert "Hi Ada," in sendgrid.messages()[0]["text"]
    assert cli("tick", "--now", NOW, env=env).stdout.count("new deliveries 0") == 1
    assert cli("worker", "--burst", env=env).returncode == 0
    assert len(sendgrid.accepted) == 1


def test_always_on_dramatiq_worker_sends(flow: Flow, env: dict[str, str], sendgrid: SendGridStandIn) -> None:
    flow.ingest([ada(), track("c1", "order_placed", "2026-11-22T09:00:00Z", "o-1", total=42.5)])
    flow.tick(NOW)
    dramatiq_bin = Path(sys.executable).parent / "dramatiq"
    proc = subprocess.Popen(
        [str(dramatiq_bin), "automation.worker", "--processes", "1", "--threads", "2"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_for(lambda: flow.deliveries()[0].status == "sent"), "worker did not send"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert len(sendgrid.accepted) == 1


def test_scheduler_ticks_and_stops_cleanly_on_sigterm(env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(BIN), "scheduler"],
        env={**os.environ, **env, "AUTOMATION_TICK_INTERVAL_S": "60"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if "tick at" in line:
            break
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    assert "tick at" in output and "scheduler stopped" in output
    assert "Traceback" not in output


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing_journeys", "journeys folder not found"),
        ("bad_yaml", "bad.yaml:4:1: invalid YAML"),
        ("unknown_template", "unknown template 'no_such_template'"),
    ],
)
def test_bad_journeys_are_one_line_errors(
    env: dict[str, str], tmp_path: Path, setup: str, expected: str
) -> None:
    journeys = tmp_path / "j"
    if setup != "missing_journeys":
        journeys.mkdir()
    if setup == "bad_yaml":
        (journeys / "bad.yaml").write_text("id: x\nname: X\ntrigger: {event: {name: a}\nsteps: []\n")
    if setup == "unknown_template":
        (journeys / "t.yaml").write_text(
            "id: t\nname: T\ntrigger: {event: {name: a}}\nsteps:\n  - send: {channel: email, template: no_such_template}\n"
        )
    result = cli("tick", "--now", NOW, env={**env, "AUTOMATION_JOURNEYS_DIR": str(journeys)})
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_unreachable_database_is_one_line(env: dict[str, str]) -> None:
    url = "postgresql+psycopg://postgres:hunter2@127.0.0.1:1/nowhere"
    for args in (("tick", "--now", NOW), ("db", "upgrade"), ("ingest", "-")):
        result = cli(*args, env={**env, "DATABASE_URL": url}, stdin="")
        assert result.returncode != 0
        assert result.stderr.startswith(
            "error: cannot connect to database postgresql+psycopg://postgres:***@127.0.0.1:1/nowhere"
        )
        assert len(result.stderr.strip().splitlines()) == 1
        assert "hunter2" not in result.stderr + result.stdout


def test_missing_schema_is_one_line(env: dict[str, str], empty_pg_url: str) -> None:
    result = cli("tick", "--now", NOW, env={**env, "DATABASE_URL": empty_pg_url})
    assert result.returncode == 1
    assert result.stderr.strip() == "error: the database schema is missing; run `automation db upgrade` first"


def test_schema_behind_the_code_is_one_line(env: dict[str, str], empty_pg_url: str) -> None:
    assert cli("db", "upgrade", env={**env, "DATABASE_URL": empty_pg_url}).returncode == 0
    engine = create_engine(empty_pg_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'dash21'"))
    engine.dispose()
    result = cli("tick", "--now", NOW, env={**env, "DATABASE_URL": empty_pg_url})
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "error: the database schema is out of date; run `automation db upgrade` first"
    )


def test_bad_now_and_missing_file(env: dict[str, str]) -> None:
    bad_now = cli("tick", "--now", "yesterday", env=env)
    assert bad_now.returncode == 2 and "--now is not ISO 8601" in bad_now.stderr
    missing = cli("ingest", "/nonexistent/file.jsonl", env=env)
    assert (
        missing.returncode == 1
        and missing.stderr.strip() == "error: cannot read /nonexistent/file.jsonl: No such file or directory"
    )


def test_delivery_row_commits_before_enqueue(flow: Flow) -> None:
    flow.ingest([ada(), track("c1", "order_placed", "2026-11-22T09:00:00Z", "o-1", total=42.5)])
    seen: list[str] = []

    def spy(queued):
        with flow.runtime.sessions() as s:
            seen.extend(s.scalars(select(Delivery.status).where(Delivery.id.in_([q.id for q in queued]))))

    from automation.processes.tick import tick

    tick(
        flow.runtime.engine,
        flow.runtime.sessions,
        flow.runtime.catalog,
        __import__("tests.harness").harness.utc(NOW),
        spy,
    )
    assert seen == ["queued"]
