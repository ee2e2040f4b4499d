"""Generated webhook traffic through the real app on real PostgreSQL (hypothesis).

SendGrid batches (signed) mixing well-formed events with arbitrary JSON, Twilio
status and inbound forms (signed), and arbitrary unsubscribe tokens. Whatever
arrives: no server error (the TestClient re-raises any), a bounded time per
request, every refused input a 4xx or a reported event, every good event
stored, and nothing stored that was reported refused.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from automation.config import Settings
from automation.core.feedback import TWILIO_STATUSES
from automation.core.tokens import unsubscribe_token
from automation.store.models import ProviderEvent
from tests.integration.test_web import NOW, seed
from tests.webhooks import SendGridSigner, twilio_post

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MAX_SECONDS = 5.0
SERIAL = itertools.count()

# Text the database stores as it is, for the events that must be stored.
CLEAN = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)
KINDS = ["processed", "delivered", "deferred", "bounce", "dropped", "open", "click", "spamreport",
         "unsubscribe", "group_unsubscribe", "group_resubscribe", "machine_opened"]  # fmt: skip


def stored_keys(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as s:
        return set(s.scalars(select(ProviderEvent.event_key)))


def timed(call: Any) -> Any:
    started = time.monotonic()
    response = call()
    assert time.monotonic() - started < MAX_SECONDS
    assert response.status_code < 500, response.text
    return response


@st.composite
def good_event(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "event": draw(st.sampled_from(KINDS)),
        "sg_event_id": f"good-{next(SERIAL)}-{draw(CLEAN)}",
        "timestamp": draw(st.integers(946_684_800, 4_102_444_800) | st.floats(946_684_800, 4_102_444_800)),
        "email": draw(st.sampled_from(["ada@example.com", "bob@example.com", None])),
        "sg_message_id": draw(CLEAN),
        "reason": draw(CLEAN),
        "type": draw(st.sampled_from(["bounce", "blocked", None])),
        "delivery_id": draw(st.none() | st.integers(-5, 10**20).map(str) | CLEAN),
        "category": draw(st.lists(CLEAN, max_size=3)),
    }


@st.composite
def hostile_event(draw: st.DrawFn) -> Any:
    """Anything: arbitrary JSON, or a good event with one field made arbitrary."""
    if draw(st.booleans()):
        return draw(JSON)
    event = draw(good_event())
    event[draw(st.sampled_from(sorted(event)))] = draw(JSON)
    return event


@FUZZ
@given(events=st.lists(st.tuples(st.booleans(), good_event(), hostile_event()), max_size=8))
def test_signed_sendgrid_batches(
    client: TestClient, signer: SendGridSigner, sessions: sessionmaker[Session], events: list[Any]
) -> None:
    batch = [good if is_good else hostile for is_good, good, hostile in events]
    body = json.dumps(batch).encode()
    before = stored_keys(sessions)
    response = timed(
        lambda: client.post("/webhooks/sendgrid", content=body, headers=signer.headers(body, NOW))
    )
    answer = response.json()
    refused = {r["event"] for r in answer["refused"]}
    goods = {i for i, (is_good, _, _) in enumerate(events) if is_good}
    assert not refused & goods
    new_keys = stored_keys(sessions) - before
    if response.status_code == 400:
        assert refused == set(range(len(batch))) and not new_keys
        return
    assert response.status_code == 200
    for i, raw in enumerate(batch):
        key = raw.get("sg_event_id") if isinstance(raw, dict) else None
        if i in refused:
            assert not isinstance(key, str) or f"sendgrid:{key}" not in new_keys
        else:
            assert f"sendgrid:{key}" in before | new_keys


@FUZZ
@given(body=st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode()), sign=st.booleans())
def test_arbitrary_sendgrid_bodies(
    client: TestClient, signer: SendGridSigner, body: bytes, sign: bool
) -> None:
    headers = signer.headers(body, NOW) if sign else {"Content-Type": "application/json"}
    response = timed(lambda: client.post("/webhooks/sendgrid", content=body, headers=headers))
    assert response.status_code in ((200, 400) if sign else (401,))


FORM_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)


@FUZZ
@given(
    status=st.sampled_from(sorted(TWILIO_STATUSES)),
    code=st.sampled_from(["", "21610", "21211", "30003"]),
    extra=st.dictionaries(FORM_TEXT, FORM_TEXT, max_size=4),
    text=FORM_TEXT | st.sampled_from(["STOP", " start ", "Quit"]),
    hostile=st.dictionaries(FORM_TEXT, FORM_TEXT, max_size=6),
)
def test_signed_twilio_forms(
    client: TestClient,
    sessions: sessionmaker[Session],
    status: str,
    code: str,
    extra: dict[str, str],
    text: str,
    hostile: dict[str, str],
) -> None:
    sid = f"SM{next(SERIAL):032d}"
    good = {**extra, "MessageSid": sid, "MessageStatus": status, "To": "+15551230000", "ErrorCode": code}
    body, headers = twilio_post("/webhooks/twilio/status", good)
    assert (
        timed(lambda: client.post("/webhooks/twilio/status", content=body, headers=headers)).status_code
        == 204
    )
    assert f"twilio:{sid}:{status}" in stored_keys(sessions)
    reply = {**extra, "MessageSid": f"{sid}-in", "From": "+15551230000", "Body": text}
    body, headers = twilio_post("/webhooks/twilio/inbound", reply)
    assert (
        timed(lambda: client.post("/webhooks/twilio/inbound", content=body, headers=headers)).status_code
        == 200
    )
    assert f"twilio-inbound:{sid}-in" in stored_keys(sessions)
    for path in ("/webhooks/twilio/status", "/webhooks/twilio/inbound"):
        body, headers = twilio_post(path, hostile)
        response = timed(lambda p=path, b=body, h=headers: client.post(p, content=b, headers=h))
        assert response.status_code in (200, 204, 400)


@FUZZ
@given(token=st.text(max_size=80))
def test_arbitrary_unsubscribe_tokens(client: TestClient, token: str) -> None:
    for method in ("GET", "POST"):
        response = timed(lambda m=method: client.request(m, f"/unsubscribe/{quote(token, safe='')}"))
        assert response.status_code == 404


@FUZZ
@given(offset=st.integers(0, 3))
def test_genuine_unsubscribe_tokens_work(
    client: TestClient, web_settings: Settings, sessions: sessionmaker[Session], offset: int
) -> None:
    did = seed(sessions, address=f"fuzz-{next(SERIAL)}@example.com")
    token = unsubscribe_token(did, web_settings.unsubscribe_secret.get_secret_value())
    assert timed(lambda: client.post(f"/unsubscribe/{token}")).status_code == 200
    missing = unsubscribe_token(did + 1000 + offset, web_settings.unsubscribe_secret.get_secret_value())
    assert timed(lambda: client.get(f"/unsubscribe/{missing}")).status_code == 404
