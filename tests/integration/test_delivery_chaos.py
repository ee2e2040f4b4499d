"""Done when: real workers over 2,000 deliveries, a SIGKILL, a Redis restart, 429s and 503s.

Two `dramatiq automation.worker` processes deliver (emails in batches of up to
25 recipients per request, SMS one by one) through the real SDKs to
stand-in processes that answer 429 or 503 a fifth of the time. Mid-run one
worker is killed with SIGKILL (and replaced, as a supervisor would) and the
test's own Redis, which keeps nothing on disk, is killed and restarted, so
every queued message is lost. Ticks at later instants sweep what went
missing. At the end every due message went out exactly once, except those the
ledger marks `unknown`, and nothing went to a suppressed or non-consenting
customer or inside quiet hours.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from automation.config import Settings
from automation.core.rules import in_quiet_hours
from automation.store import suppressions
from automation.store.models import Customer, Delivery
from tests.deliverykit import event, kill_worker, kit_env, kit_settings, person, start_worker, stop_worker
from tests.harness import Flow, utc

__all__ = ["kit_env", "kit_settings"]

T0 = "2026-11-22T12:00:00Z"
BATCH = 25  # emails of one journey step go in requests of up to 25 recipients
TOKYO_MORNING = "2026-11-22T23:00:00Z"  # 08:00 in Tokyo
ACTIVE = ("queued", "claimed", "sending")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    """A throwaway redis-server that keeps nothing on disk: a restart loses every message."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ping = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
            if ping.stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def crash(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)


def start_standin(kind: str, log: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.standins", kind, str(port), "--fail-rate", "0.2", "--log", str(log)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None and "stand-in on" in proc.stdout.readline()
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture
def chaos(kit_env: dict[str, str], kit_settings: Settings, tmp_path: Path) -> Iterator[dict]:
    redis_server = RedisProcess(tmp_path)
    redis_server.start()
    sg, sg_url = start_standin("sendgrid", tmp_path / "sendgrid.jsonl")
    tw, tw_url = start_standin("twilio", tmp_path / "twilio.jsonl")
    env = {
        **kit_env,
        "REDIS_URL": redis_server.url,
        "SENDGRID_API_HOST": sg_url,
        "TWILIO_API_BASE_URL": tw_url,
        "AUTOMATION_MAX_ATTEMPTS": "30",
        "AUTOMATION_EMAIL_RATE_PER_S": "10000",
        "AUTOMATION_SMS_RATE_PER_S": "10000",
        "AUTOMATION_HEARTBEAT_TIMEOUT_MS": "3000",
        "AUTOMATION_MAINTENANCE_CHANCE": "100000",
        "AUTOMATION_EMAIL_BATCH_SIZE": str(BATCH),
    }
    flow = Flow(kit_settings.model_copy(update={"redis_url": redis_server.url, "email_batch_size": BATCH}))
    try:
        yield {"env": env, "flow": flow, "redis": redis_server, "logs": tmp_path}
    finally:
        flow.close()
        for proc in (sg, tw):
            proc.terminate()
            proc.wait(timeout=10)
        if redis_server.proc and redis_server.proc.poll() is None:
            redis_server.crash()


def population() -> tuple[list[dict], dict[str, str]]:
    """2,000 customers, one delivery each; the kind says what must happen to it."""
    records: list[dict] = []
    kinds: dict[str, str] = {}
    for n in range(2000):
        cid = f"k{n:04d}"
        slot = n % 20
        if slot < 12:
            kind, rec, ev = "news", person(cid), "news"
        elif slot < 16:
            kind, rec, ev = "text", person(cid), "text"
        elif slot == 16:
            kind, rec, ev = "no_consent", person(cid, email_opt_in=False), "news"
        elif slot == 17:
            kind, rec, ev = "suppressed", person(cid), "text"
        elif slot == 18:
            kind, rec, ev = "tokyo", person(cid, tz="Asia/Tokyo"), "news"  # 21:00 there: quiet
        else:
            kind, rec, ev = "receipt", person(cid, email_opt_in=False), "receipt"
        kinds[cid] = kind
        records += [rec, event(cid, ev, "2026-11-22T11:00:00Z")]
    return records, kinds


def statuses(flow: Flow) -> dict[str, int]:
    with flow.runtime.sessions() as s:
        return dict(s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())


def settle(flow: Flow, sim: dt.datetime, timeout: float) -> dt.datetime:
    """Wait until nothing is in flight; when progress stalls, tick later to sweep what was lost."""
    deadline = time.monotonic() + timeout
    last, still = None, time.monotonic()
    while time.monotonic() < deadline:
        counts = statuses(flow)
        if not any(counts.get(s) for s in ACTIVE):
            return sim
        if counts != last:
            last, still = counts, time.monotonic()
        elif time.monotonic() - still > 4:
            sim += dt.timedelta(seconds=flow.settings.claim_lease_s + 60)
            flow.tick(sim.isoformat())
            still = time.monotonic()
        time.sleep(0.25)
    raise AssertionError(f"deliveries still in flight: {statuses(flow)}")


@pytest.mark.slow
def test_two_thousand_deliveries_through_kills_restarts_and_provider_errors(chaos: dict) -> None:
    flow: Flow = chaos["flow"]
    env: dict[str, str] = chaos["env"]
    records, kinds = population()
    assert not flow.ingest(records).rejected
    phones = {}
    with flow.runtime.sessions.begin() as s:
        for c in s.scalars(select(Customer)):
            phones[c.phone] = c.id
            if kinds[c.id] == "suppressed":
                suppressions.add(s, [suppressions.Entry("sms", c.phone, "stop")], "manual", utc(T0))

    started = time.monotonic()
    assert flow.tick(T0).enqueued == 2000
    logs: Path = chaos["logs"]
    workers = [start_worker(env, logs / "worker-a.log"), start_worker(env, logs / "worker-b.log")]
    try:
        assert _wait_sent(flow, 300), statuses(flow)
        kill_worker(workers[0])  # SIGKILL mid-run; a supervisor starts a new one
        workers[0] = start_worker(env, logs / "worker-c.log")
        assert _wait_sent(flow, 900), statuses(flow)
        chaos["redis"].crash()  # every queued and delayed message is gone
        chaos["redis"].start()
        settle(flow, utc(T0), timeout=60)
        flow.tick(TOKYO_MORNING)
        settle(flow, utc(TOKYO_MORNING), timeout=60)
    finally:
        codes = [stop_worker(w) for w in workers]
    elapsed = time.monotonic() - started
    assert codes == [0, 0]

    rows = {d.customer_id: d for d in flow.deliveries()}
    assert len(rows) == 2000
    sent_mail = collections.Counter(
        p["custom_args"]["delivery_id"]
        for line in (chaos["logs"] / "sendgrid.jsonl").read_text().splitlines()
        for p in json.loads(line)["body"]["personalizations"]
    )
    sent_sms = collections.Counter(
        phones[json.loads(line)["body"]["To"]]
        for line in (chaos["logs"] / "twilio.jsonl").read_text().splitlines()
    )
    final = collections.Counter(d.status for d in rows.values())
    for cid, d in rows.items():
        copies = sent_mail[str(d.id)] if d.channel == "email" else sent_sms[cid]
        kind = kinds[cid]
        if kind in ("news", "text", "tokyo", "receipt"):
            assert d.status in ("sent", "unknown"), (cid, d.status, d.reason)
            if d.status == "sent":
                assert copies == 1, (cid, copies)
            else:
                assert copies <= 1, (cid, copies)
            zone = ZoneInfo("Asia/Tokyo" if kind == "tokyo" else "UTC")
            assert not in_quiet_hours(d.due_at, dt.time(21), dt.time(8), zone), (cid, d.due_at)
        else:
            assert copies == 0, (cid, kind)
            assert d.status == ("skipped" if kind == "no_consent" else "suppressed"), (cid, d.status)
    tokyo = [d for cid, d in rows.items() if kinds[cid] == "tokyo"]
    assert {d.due_at.isoformat() for d in tokyo} == {"2026-11-22T23:00:00+00:00"}
    # At most the killed worker's four threads were mid-request, each with at most one batch.
    assert final["unknown"] <= 4 * BATCH, final
    print(f"\n2,000 deliveries in {elapsed:.0f} s through a SIGKILL and a Redis restart: {dict(final)}")
    # Every copy the providers accepted belongs to a `sent` row or to an `unknown` one.
    unknown_with_copy = sum(
        1
        for d in rows.values()
        if d.status == "unknown" and (sent_mail[str(d.id)] or sent_sms[d.customer_id])
    )
    assert sum(sent_mail.values()) + sum(sent_sms.values()) == final["sent"] + unknown_with_copy


def _wait_sent(flow: Flow, n: int, timeout: float = 90) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if statuses(flow).get("sent", 0) >= n:
            return True
        time.sleep(0.1)
    return False
