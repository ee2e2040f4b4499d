"""The web, scheduler and worker processes as a user runs them, observed over HTTP.

`automation web` on a loopback port receives signed SendGrid events for an
email the worker really sent (through the SDK to the stand-in) and serves the
preference-centre link from that email's List-Unsubscribe header; the one-click
unsubscribe it records stops the next email. The scheduler and the Dramatiq worker serve
their Prometheus metrics on the configured ports.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dramatiq.brokers.stub import StubBroker

from automation.config import load_settings
from automation.processes.worker_metrics import add_worker_metrics
from tests.harness import BIN, Flow, identify, track, utc
from tests.standins import SendGridStandIn
from tests.webhooks import PUBLIC_URL, SendGridSigner, batch, sendgrid_event

NOW = "2026-11-22T12:00:00Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except httpx.TransportError:
            result = None
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("timed out")


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    return out


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        args, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture
def signer() -> SendGridSigner:
    return SendGridSigner()


@pytest.fixture
def web_env(env: dict[str, str], signer: SendGridSigner, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    extra = {"SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public_key, "AUTOMATION_PUBLIC_URL": PUBLIC_URL}
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    return {**env, **extra}


@pytest.fixture
def flow(web_env: dict[str, str]) -> Iterator[Flow]:
    f = Flow(load_settings())
    yield f
    f.close()


def ada() -> dict[str, Any]:
    return identify(
        "c1", "2026-01-01T00:00:00Z", email="ada@example.com", first_name="Ada", email_opt_in=True
    )


def test_web_process_takes_signed_events_and_unsubscribes_over_http(
    flow: Flow, web_env: dict[str, str], signer: SendGridSigner, sendgrid: SendGridStandIn
) -> None:
    flow.ingest([ada(), track("c1", "order_placed", "2026-11-22T09:00:00Z", "o-1", total=10)])
    flow.run(NOW)
    [mail] = sendgrid.messages()
    delivery_id = int(mail["custom_args"]["delivery_id"])
    link = mail["headers"]["List-Unsubscribe"].strip("<>")
    assert link.startswith(f"{PUBLIC_URL}/unsubscribe/")
    assert mail["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    port = free_port()
    proc = start([str(BIN), "web", "--host", "127.0.0.1", "--port", str(port)], web_env)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            wait_for(lambda: http.get("/healthz").json()["database"] == "ok")
            sent = utc(NOW)
            now = utc(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            body = batch(
                sendgrid_event("delivered", "ev-1", sent, delivery_id),
                sendgrid_event("open", "ev-2", sent.replace(minute=9), delivery_id),
            )
            assert (
                http.post("/webhooks/sendgrid", content=body, headers=signer.headers(body, now)).status_code
                == 200
            )
            forged = batch(sendgrid_event("bounce", "ev-3", sent, delivery_id, type="bounce"))
            forged_headers = SendGridSigner().headers(forged, now)
            assert http.post("/webhooks/sendgrid", content=forged, headers=forged_headers).status_code == 401

            [row] = flow.deliveries()
            assert row.provider_status == "delivered" and row.opened_at == sent.replace(minute=9)

            path = link.removeprefix(PUBLIC_URL)
            assert http.get(path).status_code == 200
            assert "You are unsubscribed" in http.post(path, data={"List-Unsubscribe": "One-Click"}).text
            metrics = http.get("/metrics").text
            assert 'automation_webhook_events_total{provider="sendgrid",type="open"} 1.0' in metrics
    finally:
        out = stop(proc)
    assert "ada@example.com" not in out  # no addresses in the logs

    # The next order's email is not sent: one-click left its topic (the built-in `marketing`).
    flow.ingest([track("c1", "order_placed", "2026-11-22T13:00:00Z", "o-2", total=12)])
    flow.run("2026-11-22T15:30:00Z")
    statuses = [(d.status, d.reason) for d in flow.deliveries()]
    assert statuses[1] == ("skipped", "topic: marketing")
    assert len(sendgrid.accepted) == 1


def test_web_refuses_to_start_on_a_bad_public_key(web_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [str(BIN), "web", "--port", str(free_port())],
        env={**os.environ, **web_env, "SENDGRID_WEBHOOK_PUBLIC_KEY": "bm90IGEga2V5"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: SENDGRID_WEBHOOK_PUBLIC_KEY is not a valid public key"


def scrape_until(port: int, needle: str) -> str:
    """The metrics page on `port` once it contains `needle`."""

    def page() -> str | None:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        return text if needle in text else None

    return str(wait_for(page))


def test_scheduler_serves_tick_and_ledger_metrics(env: dict[str, str]) -> None:
    port = free_port()
    proc = start([str(BIN), "scheduler"], {**env, "AUTOMATION_METRICS_PORT": str(port)})
    try:
        # At least one tick timed (the scheduler may have ticked again before the first scrape).
        def ticked() -> str | None:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            ticks = re.search(r"^automation_tick_duration_seconds_count (\S+)$", text, re.M)
            return text if ticks is not None and float(ticks.group(1)) >= 1.0 else None

        text = str(wait_for(ticked))
        assert "automation_ledger_up 1.0" in text
        assert 'automation_queue_messages{queue="deliveries"} 0.0' in text
    finally:
        stop(proc)


def test_scheduler_metrics_port_in_use_is_one_line(env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [str(BIN), "scheduler"],
            env={**os.environ, **env, "AUTOMATION_METRICS_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: cannot serve metrics on port {port}: Address already in use"


def test_dramatiq_worker_serves_send_latency(
    flow: Flow, web_env: dict[str, str], sendgrid: SendGridStandIn, tmp_path: Path
) -> None:
    flow.ingest([ada(), track("c1", "order_placed", "2026-11-22T09:00:00Z", "o-1", total=10)])
    flow.tick(NOW)
    port = free_port()
    prom_dir = tmp_path / "prom"
    prom_dir.mkdir()
    dramatiq_bin = Path(sys.executable).parent / "dramatiq"
    proc = start(
        [str(dramatiq_bin), "automation.worker", "--processes", "1", "--threads", "2"],
        {
            **web_env,
            "AUTOMATION_WORKER_METRICS": "1",
            "dramatiq_prom_port": str(port),
            "dramatiq_prom_host": "127.0.0.1",
            "dramatiq_prom_db": str(prom_dir),
        },
    )
    try:
        wait_for(lambda: flow.deliveries()[0].status == "sent")
        text = scrape_until(port, 'automation_send_latency_seconds_count{status="sent"} 1.0')
        assert 'dramatiq_messages_total{actor_name="deliver",queue_name="deliveries"} 1.0' in text
    finally:
        stop(proc)
    assert len(sendgrid.accepted) == 1


def test_worker_metrics_setting_leaves_other_processes_alone() -> None:
    """Outside Dramatiq's CLI (tick, --burst, tests) the setting adds no middleware."""
    broker = StubBroker()
    before = list(broker.middleware)
    add_worker_metrics(broker)
    assert broker.middleware == before
