"""The tracking API of `automation web`, reached over HTTP by real clients and by hand.

An `automation web` process on a loopback port takes calls from the real
`segment-analytics-python` and `rudder-sdk-python` clients (batches, gzip,
retries after 429) and from httpx for every documented refusal, each of which
must change nothing. A SIGKILLed web process keeps every event it answered
200 for, and the clients' retries of the rest create no duplicate.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from automation.store.models import AnonymousEvent, AnonymousId, Customer, Event
from tests.harness import BIN, cli
from tests.integration.test_web_process import free_port, start, stop, wait_for


class Web:
    """An `automation web` process and a write key for it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        created = cli("keys", "create", "shop", env=env)
        assert created.returncode == 0, created.stderr
        self.key = created.stdout.strip()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> Web:
        self.proc = start([str(BIN), "web", "--host", "127.0.0.1", "--port", str(self.port)], self.env)
        with httpx.Client(base_url=self.url, timeout=5) as http:
            wait_for(lambda: http.get("/healthz").json()["database"] == "ok")  # serving
        return self

    def stop(self) -> str:
        assert self.proc is not None
        out = stop(self.proc)
        self.proc = None
        return out

    def auth(self, key: str | None = None) -> dict[str, str]:
        token = base64.b64encode(f"{key or self.key}:".encode()).decode()
        return {"Authorization": f"Basic {token}"}


@pytest.fixture
def web(env: dict[str, str]) -> Iterator[Web]:
    w = Web(env).start()
    yield w
    if w.proc is not None:
        out = w.stop()
        assert "ada@example.com" not in out  # no addresses in the logs


def counts(sessions: sessionmaker[Session]) -> tuple[int, ...]:
    with sessions() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(t)) or 0
            for t in (Customer, Event, AnonymousId, AnonymousEvent)
        )


def keys_of(sessions: sessionmaker[Session]) -> list[str]:
    """The keys of the events the calls sent (not the `tier_changed` events the loyalty programme adds)."""
    with sessions() as s:
        return sorted(s.scalars(select(Event.event_key).where(Event.name != "tier_changed")))


def iso(at: dt.datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


NOW = dt.datetime.now(dt.UTC)


def test_segment_client_batches_gzips_and_retries_and_each_event_lands_once(
    web: Web, sessions: sessionmaker[Session]
) -> None:
    errors: list[Any] = []
    client = SegmentClient(
        web.key,
        host=web.url,
        gzip=True,
        upload_size=25,
        max_retries=3,
        on_error=lambda e, b: errors.append(e),
    )
    client.identify("c1", {"email": "ada@example.com", "firstName": "Ada"})
    for n in range(60):
        client.track("c1", "order_placed", {"total": n, "order_id": f"o-{n}"}, message_id=f"m-{n}")
    client.page("c1", "Docs", "Pricing", {"url": "/pricing"}, message_id="p-1")
    client.flush()
    client.join()
    assert errors == []
    assert keys_of(sessions) == sorted([f"m-{n}" for n in range(60)] + ["p-1"])
    with sessions() as s:
        ada = s.get(Customer, "c1")
        assert ada is not None
        assert (ada.email, ada.first_name, ada.order_count) == ("ada@example.com", "Ada", 60)
        page = s.scalar(select(Event).where(Event.event_key == "p-1"))
        assert page is not None and page.name == "page_viewed"
        assert page.properties["name"] == "Pricing" and page.properties["url"] == "/pricing"
        assert page.properties["context"]["library"]["name"] == "analytics-python"

    # The client's retry of a batch it sent before changes nothing.
    again = SegmentClient(web.key, host=web.url, gzip=True, on_error=lambda e, b: errors.append(e))
    for n in range(60):
        again.track("c1", "order_placed", {"total": n}, message_id=f"m-{n}")
    again.flush()
    again.join()
    assert errors == [] and len(keys_of(sessions)) == 61
    with sessions() as s:
        assert s.get(Customer, "c1").order_count == 60  # type: ignore[union-attr]


def test_rudderstack_client_gzips_by_default_and_links_an_anonymous_visitor(
    web: Web, sessions: sessionmaker[Session]
) -> None:
    errors: list[Any] = []
    client = RudderClient(web.key, host=web.url, on_error=lambda e, b: errors.append(e))
    client.track(anonymous_id="anon-1", event="viewed_product", properties={"sku": "A1"}, message_id="r-1")
    client.identify(anonymous_id="anon-1", traits={"tier": "gold"}, message_id="r-2")
    client.flush()
    assert errors == []
    assert counts(sessions) == (0, 0, 1, 1)  # kept aside, not a customer yet

    client.identify("c9", {"email": "ada@example.com"}, anonymous_id="anon-1")
    client.track(anonymous_id="anon-1", event="order_placed", properties={"total": 3}, message_id="r-3")
    client.flush()
    client.join()
    assert errors == []
    assert counts(sessions) == (1, 2, 1, 0)
    with sessions() as s:
        c9 = s.get(Customer, "c9")
        # The shipped loyalty.yaml defines tiers, so the programme owns `tier`: the ingested gold is ignored.
        assert c9 is not None and (c9.email, c9.tier, c9.order_count) == ("ada@example.com", "bronze", 1)
        assert {e.event_key: e.customer_id for e in s.scalars(select(Event))} == {"r-1": "c9", "r-3": "c9"}


def test_every_bad_request_gets_its_documented_status_and_changes_nothing(
    web: Web, sessions: sessionmaker[Session]
) -> None:
    good = {"userId": "c1", "event": "order_placed", "messageId": "ok-1"}
    big = {"userId": "c1", "event": "e", "properties": {"pad": "x" * 33_000}}
    lone = {"type": "track", "userId": "c1", "event": "e", "properties": {"a": "\ud800"}}
    bomb = gzip.compress(b'{"batch": [' + b" " * 20_000_000 + b"]}")
    deep = b"[" * 100_000 + b"]" * 100_000
    with httpx.Client(base_url=web.url, timeout=30) as http:
        cases = [
            (http.post("/v1/track", json=good), 401),
            (http.post("/v1/track", json=good, headers=web.auth("wk_wrong")), 401),
            (http.post("/v1/track", json={**good, "writeKey": "wk_wrong"}), 401),
            (http.post("/v1/track", content=b"{nope", headers=web.auth()), 400),
            (http.post("/v1/track", json=[good], headers=web.auth()), 400),
            (http.post("/v1/batch", content=deep, headers=web.auth()), 400),
            (http.post("/v1/group", json={"userId": "c1", "groupId": "g"}, headers=web.auth()), 400),
            (http.post("/v1/track", json={"userId": "c1"}, headers=web.auth()), 400),
            (http.post("/v1/batch", json={"batch": []}, headers=web.auth()), 400),
            (http.post("/v1/track", json=big, headers=web.auth()), 413),
            (http.post("/v1/batch", json={"batch": [good, big]}, headers=web.auth()), 413),
            (http.post("/v1/batch", json={"batch": [good] * 40 * 400}, headers=web.auth()), 413),
            (http.post("/v1/batch", content=bomb, headers={**web.auth(), "Content-Encoding": "gzip"}), 413),
            (
                http.post(
                    "/v1/batch", content=b"not gzip", headers={**web.auth(), "Content-Encoding": "gzip"}
                ),
                400,
            ),
            (http.post("/v1/track", content=json.dumps({**good, "writeKey": "wk_\ud800"})), 401),
            (http.post("/v1/batch", content=json.dumps({"batch": [lone]}), headers=web.auth()), 400),
        ]
        for response, status in cases:
            assert response.status_code == status, response.text
            assert response.json()["success"] is False
        assert counts(sessions) == (0, 0, 0, 0)
        assert cases[5][0].json()["message"] == "the body is nested too deep"
        assert cases[6][0].json()["rejected"] == [{"index": 0, "reason": "group calls are not supported"}]
        assert cases[7][0].json()["rejected"] == [{"index": 0, "reason": "missing event name"}]
        surrogate = "a text value holds a lone surrogate (invalid Unicode)"
        assert cases[-1][0].json()["rejected"] == [{"index": 0, "reason": surrogate}]

        mixed = {
            "batch": [
                {**good, "type": "track"},
                {"type": "track", "userId": "c2", "event": "e", "timestamp": "1999-01-01T00:00:00Z"},
                {"type": "group", "userId": "c1"},
                {"type": "identify", "userId": "c3", "traits": {"email": "nope"}},
                {"type": "track", "userId": "c4", "event": "x" * 200, "messageId": "long-1"},
            ],
            "writeKey": web.key,
        }
        answer = http.post("/v1/batch", json=mixed)
        assert answer.status_code == 200
        assert answer.json() == {
            "success": True,
            "rejected": [
                {"index": 1, "reason": "timestamp is before 2000"},
                {"index": 2, "reason": "group calls are not supported"},
                {"index": 3, "reason": "traits.email is not an email address"},
                {"index": 4, "reason": "refused by the database: value too long for its field"},
            ],
        }
        assert counts(sessions) == (1, 1, 0, 0)

        assert cli("keys", "revoke", "shop", env=web.env).returncode == 0
        revoked = http.post("/v1/track", json={**good, "messageId": "ok-2"}, headers=web.auth())
        assert revoked.status_code == 401
        assert counts(sessions) == (1, 1, 0, 0)
    listed = cli("keys", "list", env=web.env)
    assert "shop" in listed.stdout and web.key not in listed.stdout


def test_over_the_keys_rate_a_request_gets_429_with_retry_after_and_the_client_retries(
    env: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    web = Web({**env, "AUTOMATION_API_RATE_PER_S": "2"}).start()
    try:
        with httpx.Client(base_url=web.url, timeout=10) as http:
            statuses = [
                http.post(
                    "/v1/track", json={"userId": "c", "event": "e", "messageId": f"x-{n}"}, headers=web.auth()
                )
                for n in range(4)
            ]
        refused = [r for r in statuses if r.status_code == 429]
        assert refused and all(r.headers["Retry-After"] == "1" for r in refused)
        taken = [f"x-{n}" for n, r in enumerate(statuses) if r.status_code == 200]
        assert keys_of(sessions) == taken

        errors: list[Any] = []
        client = SegmentClient(web.key, host=web.url, upload_size=5, on_error=lambda e, b: errors.append(e))
        for n in range(20):
            client.track("c", "e", message_id=f"y-{n}")
        client.flush()
        client.join()
        assert errors == []
        assert keys_of(sessions) == sorted(taken + [f"y-{n}" for n in range(20)])
    finally:
        web.stop()


def test_a_web_process_killed_under_load_keeps_every_event_it_answered_200_for(
    web: Web, sessions: sessionmaker[Session]
) -> None:
    answered: list[str] = []
    unanswered: list[list[dict[str, Any]]] = []
    stop_sending = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=web.url, timeout=10) as http:
            while not stop_sending.is_set():
                batch = [
                    {
                        "type": "track",
                        "userId": f"c{n % 7}",
                        "event": "order_placed",
                        "messageId": uuid.uuid4().hex,
                    }
                    for n in range(50)
                ]
                try:
                    reply = http.post("/v1/batch", json={"batch": batch}, headers=web.auth())
                except httpx.TransportError:
                    unanswered.append(batch)
                    return
                if reply.status_code == 200:
                    answered.extend(item["messageId"] for item in batch)
                else:
                    unanswered.append(batch)

    senders = [threading.Thread(target=send) for _ in range(3)]
    for thread in senders:
        thread.start()
    wait_for(lambda: len(answered) >= 500, timeout=60)
    assert web.proc is not None
    web.proc.send_signal(signal.SIGKILL)
    web.proc.wait(timeout=10)
    web.proc = None
    stop_sending.set()
    for thread in senders:
        thread.join(timeout=30)
    stored = set(keys_of(sessions))
    assert set(answered) <= stored

    # The clients resend what they had no answer for, and the batches they had one for: no duplicate.
    web.start()
    with httpx.Client(base_url=web.url, timeout=10) as http:
        for batch in unanswered:
            assert http.post("/v1/batch", json={"batch": batch}, headers=web.auth()).status_code == 200
    every = keys_of(sessions)
    assert (
        len(every) == len(set(every)) == len(set(answered) | {i["messageId"] for b in unanswered for i in b})
    )
    with sessions() as s:
        assert sum(s.scalars(select(Customer.order_count))) == len(every)


def test_a_clock_skewed_client_is_corrected_and_the_correction_recorded(
    web: Web, sessions: sessionmaker[Session]
) -> None:
    skew = dt.timedelta(hours=3)
    happened = NOW - dt.timedelta(minutes=5)
    call = {
        "userId": "c1",
        "event": "e",
        "messageId": "skew-1",
        "timestamp": iso(happened + skew),
        "sentAt": iso(dt.datetime.now(dt.UTC) + skew),
    }
    with httpx.Client(base_url=web.url, timeout=10) as http:
        assert http.post("/v1/track", content=json.dumps(call), headers=web.auth()).status_code == 200
    with sessions() as s:
        event = s.scalar(select(Event))
        assert event is not None
        assert abs(event.occurred_at - happened) < dt.timedelta(seconds=5)
        assert (
            abs(event.properties["context"]["clock_correction_ms"] + skew / dt.timedelta(milliseconds=1))
            < 5000
        )
