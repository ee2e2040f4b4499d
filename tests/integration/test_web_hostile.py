"""Hostile and unstorable webhook input never costs a 5xx (real PostgreSQL and SQLite).

Unauthenticated oddities (a timestamp header past year 9999, a non-ASCII
unsubscribe token, signed JSON nested 100,000 deep) are 4xx. In a signed
SendGrid batch, an event the database cannot store (a NUL, a lone surrogate,
an over-long field, a NaN) is reported and the valid events around it are
stored and applied.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from automation.config import Settings
from automation.store import db
from automation.web.app import create_app
from tests.integration.test_web import NOW, SENT, delivery, event_count, post_sendgrid, seed, suppressions
from tests.webhooks import SendGridSigner, batch, sendgrid_event, twilio_post


@pytest.fixture(params=["postgresql", "sqlite"])
def any_sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "postgresql":
        yield request.getfixturevalue("sessions")
        return
    engine = db.make_engine(f"sqlite:///{tmp_path / 'web.db'}")
    db.upgrade(engine)
    yield db.sessions(engine)
    engine.dispose()


@pytest.fixture
def client(web_settings: Settings, any_sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    with TestClient(create_app(web_settings, any_sessions, clock=lambda: NOW)) as c:
        yield c


def test_a_timestamp_header_past_year_9999_is_401(client: TestClient, signer: SendGridSigner) -> None:
    body = batch(sendgrid_event("open", "o1", SENT, None))
    headers = {**signer.headers(body, NOW), "X-Twilio-Email-Event-Webhook-Timestamp": "999999999999"}
    response = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "stale timestamp"}


@pytest.mark.parametrize("token", ["1.é", "é.abc", "1.abc\u2028", "%C3%A9", "1." + "a" * 5000])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_non_ascii_or_odd_unsubscribe_token_is_404(client: TestClient, token: str, method: str) -> None:
    response = client.request(method, f"/unsubscribe/{token}")
    assert response.status_code == 404
    assert "not valid" in response.text


def test_a_signed_body_that_is_not_utf8_is_400_not_a_forgery(
    client: TestClient, signer: SendGridSigner
) -> None:
    response = post_sendgrid(client, signer, b'[{"event": "\x80"}]')
    assert response.status_code == 400
    assert response.json() == {"error": "body is not JSON"}


def test_signed_json_nested_100000_deep_is_400(client: TestClient, signer: SendGridSigner) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = post_sendgrid(client, signer, body)
    assert response.status_code == 400
    assert response.json() == {"error": "body is not JSON"}


TEXT = "text holds a NUL or an unpaired surrogate"
UNSTORABLE: dict[str, tuple[dict[str, Any], str]] = {
    "nul_in_a_field": ({"reason": "550 \u0000 no such user"}, TEXT),
    "nul_in_a_key": ({"x\u0000": 1}, TEXT),
    "nul_in_the_address": ({"email": "ada\u0000@example.com"}, TEXT),
    "nul_in_the_event_id": ({"sg_event_id": "bad\u0000id"}, TEXT),
    "lone_surrogate_in_a_field": ({"reason": "550 \ud800"}, TEXT),
    "lone_surrogate_in_the_address": ({"email": "\udfffada@example.com"}, TEXT),
    "over_long_address": ({"email": "a" * 400 + "@example.com"}, "email is longer than 320 characters"),
    "nan_in_a_field": ({"score": float("nan")}, "a number is not finite"),
    "overflowing_number": ({"score": 1e400}, "a number is not finite"),
    "deep_nesting": (
        {"category": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
        "nested deeper than 32 levels",
    ),
}


@pytest.mark.parametrize("case", sorted(UNSTORABLE))
def test_an_event_the_database_cannot_store_is_reported_and_the_rest_are_stored(
    client: TestClient, signer: SendGridSigner, any_sessions: sessionmaker[Session], case: str
) -> None:
    did = seed(any_sessions)
    fields, reason = UNSTORABLE[case]
    bad = {**sendgrid_event("bounce", "bad-1", SENT, did, type="bounce"), **fields}
    body = batch(
        sendgrid_event("spamreport", "good-1", SENT, None, email="bob@example.com", sg_message_id="sg-2.f"),
        bad,
        sendgrid_event("open", "good-2", SENT + dt.timedelta(minutes=5), did),
    )
    response = post_sendgrid(client, signer, body)
    assert response.status_code == 200
    assert response.json() == {
        "events": 3,
        "new": 2,
        "refused": [{"event": 1, "reason": f"event 1: {reason}"}],
    }
    assert event_count(any_sessions) == 2
    assert suppressions(any_sessions) == {("email", "bob@example.com", "spamreport")}
    assert delivery(any_sessions, did).opened_at == SENT + dt.timedelta(minutes=5)


def test_malformed_events_are_reported_and_the_valid_ones_stored(
    client: TestClient, signer: SendGridSigner, any_sessions: sessionmaker[Session]
) -> None:
    did = seed(any_sessions)
    body = batch(
        {"event": "bounce", "timestamp": 1},
        sendgrid_event("open", "o1", SENT, did),
        {**sendgrid_event("open", "o2", SENT, did), "timestamp": "yesterday"},
    )
    response = post_sendgrid(client, signer, body)
    assert response.status_code == 200
    assert response.json() == {
        "events": 3,
        "new": 1,
        "refused": [
            {"event": 0, "reason": "event 0: no sg_event_id"},
            {"event": 2, "reason": "event 2: timestamp must be a number of seconds"},
        ],
    }
    assert event_count(any_sessions) == 1


def test_a_batch_with_no_valid_event_is_400(
    client: TestClient, signer: SendGridSigner, any_sessions: sessionmaker[Session]
) -> None:
    body = batch({"event": "bounce", "timestamp": 1}, "not an event")
    response = post_sendgrid(client, signer, body)
    assert response.status_code == 400
    assert response.json() == {
        "error": "no valid event in the batch",
        "refused": [
            {"event": 0, "reason": "event 0: no sg_event_id"},
            {"event": 1, "reason": "event 1: not an object"},
        ],
    }
    assert event_count(any_sessions) == 0


@pytest.mark.parametrize(
    ("path", "params", "reason"),
    [
        ("/webhooks/twilio/status", {"MessageSid": "SM\u00001", "MessageStatus": "sent"}, TEXT),
        (
            "/webhooks/twilio/status",
            {"MessageSid": "SM" + "1" * 200, "MessageStatus": "sent"},
            "MessageSid is longer than 64 characters",
        ),
        (
            "/webhooks/twilio/status",
            {"MessageSid": "SM1", "MessageStatus": "failed", "To": "+1" * 200, "ErrorCode": "21610"},
            "To is longer than 320 characters",
        ),
        (
            "/webhooks/twilio/status",
            {"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "²"},
            "ErrorCode is not a number",
        ),
        (
            "/webhooks/twilio/status",
            {"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "9" * 5000},
            "ErrorCode is not a number",
        ),
        ("/webhooks/twilio/inbound", {"MessageSid": "SM1", "From": "+1555\u0000", "Body": "STOP"}, TEXT),
    ],
)
def test_twilio_posts_the_database_cannot_store_are_400(
    client: TestClient, any_sessions: sessionmaker[Session], path: str, params: dict[str, str], reason: str
) -> None:
    body, headers = twilio_post(path, params)
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error": f"form: {reason}" if reason == TEXT else reason}
    assert event_count(any_sessions) == 0 and suppressions(any_sessions) == set()
