"""Seconds, not minutes: with the Procfile's processes running, an order tracked through the API
reaches the email provider within seconds, although the scheduler's interval is an hour.

The web process wakes the scheduler after its commit. A visitor's events that
are attached to a customer by a later identify are judged by when they
happened: the one past the journey's look-back sends nothing.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.harness import BIN
from tests.integration.test_tracking_api import Web, iso
from tests.integration.test_web_process import start, wait_for
from tests.standins import SendGridStandIn

LIVE = ROOT / "tests" / "fixtures" / "live"


@pytest.fixture
def live_env(env: dict[str, str]) -> dict[str, str]:
    return {
        **env,
        "AUTOMATION_JOURNEYS_DIR": str(LIVE / "journeys"),
        "AUTOMATION_TEMPLATES_DIR": str(LIVE / "templates"),
        "AUTOMATION_TICK_INTERVAL_S": "3600",
    }


@pytest.fixture
def procfile(live_env: dict[str, str]) -> Iterator[Web]:
    """The Procfile's three process types: web, scheduler, and one small Dramatiq worker."""
    dramatiq_bin = Path(sys.executable).parent / "dramatiq"
    others: list[subprocess.Popen[str]] = [
        start([str(dramatiq_bin), "automation.worker", "--processes", "1", "--threads", "2"], live_env),
        start([str(BIN), "scheduler"], live_env),
    ]
    web = Web(live_env).start()
    yield web
    outputs = [web.stop()]
    for proc in others:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
        outputs.append(out)
    assert not any("ada@example.com" in out for out in outputs)


def visit_order(key: str, at: dt.datetime) -> dict[str, object]:
    """An order by the anonymous visitor `v1`, keyed `key`, for order id `o-KEY`."""
    return {
        "type": "track",
        "anonymousId": "v1",
        "event": "order_placed",
        "messageId": key,
        "timestamp": iso(at),
        "properties": {"order_id": f"o-{key}"},
    }


def test_an_order_tracked_through_the_api_is_thanked_within_seconds(
    procfile: Web, sendgrid: SendGridStandIn
) -> None:
    now = dt.datetime.now(dt.UTC)
    with httpx.Client(base_url=procfile.url, timeout=10) as http:
        early = [
            visit_order("old", now - dt.timedelta(days=2)),  # past the journey's one-day look-back
            visit_order("new", now - dt.timedelta(minutes=1)),
        ]
        assert http.post("/v1/batch", json={"batch": early}, headers=procfile.auth()).status_code == 200
        identify = {
            "userId": "c1",
            "anonymousId": "v1",
            "traits": {"email": "ada@example.com", "firstName": "Ada"},
        }
        linked = http.post("/v1/identify", json=identify, headers=procfile.auth())
        answered = time.monotonic()
        assert linked.status_code == 200
        [mail] = wait_for(lambda: sendgrid.messages(), timeout=30)
        first_latency = time.monotonic() - answered

        order = {
            "userId": "c1",
            "event": "order_placed",
            "messageId": "o-3",
            "properties": {"order_id": "o-3"},
        }
        assert http.post("/v1/track", json=order, headers=procfile.auth()).status_code == 200
        answered = time.monotonic()
        wait_for(lambda: len(sendgrid.messages()) == 2, timeout=30)
        second_latency = time.monotonic() - answered

    assert mail["to"] == "ada@example.com" and "o-new" in mail["text"]
    assert "o-3" in sendgrid.messages()[1]["text"]
    assert max(first_latency, second_latency) < 10
    assert len(sendgrid.messages()) == 2  # the order past the look-back was never thanked
