"""The web process in-process (Starlette TestClient) on real PostgreSQL and Redis.

Good webhooks (signed as the providers sign them) change delivery state and
suppressions; forged, unsigned, stale, replayed and malformed ones get a 4xx
(or, for a replay, no second effect) and change nothing.
"""

from __future__ import annotations

import datetime as dt
import shutil
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from automation.config import Settings, load_settings
from automation.core.tokens import unsubscribe_token
from automation.store import topics as topic_choices
from automation.store.models import Customer, Delivery, Enrollment, ProviderEvent, Suppression
from automation.web.app import create_app
from tests.conftest import ROOT
from tests.harness import Flow, identify, track
from tests.webhooks import NOW, PUBLIC_URL, SendGridSigner, batch, sendgrid_event, twilio_post

SENT = NOW - dt.timedelta(hours=1)
PHONE = "+15551230000"


def seed(sessions: sessionmaker[Session], channel: str = "email", address: str = "ada@example.com") -> int:
    """A customer, an enrollment and one sent delivery; returns the delivery id."""
    with sessions.begin() as s:
        if s.get(Customer, "c1") is None:
            s.add(Customer(id="c1", email="ada@example.com", phone=PHONE, created_at=SENT, updated_at=SENT))
        enrollment = Enrollment(
            journey_id="post_purchase_thanks",
            customer_id="c1",
            occurrence_key=f"o-{channel}-{address}",
            occurred_at=SENT,
            entered_at=SENT,
        )
        s.add(enrollment)
        s.flush()
        d = Delivery(
            enrollment_id=enrollment.id,
            step_id="thanks",
            journey_id="post_purchase_thanks",
            customer_id="c1",
            channel=channel,
            template="post_purchase_thanks",
            status="sent",
            due_at=SENT,
            address=address,
            provider="sendgrid" if channel == "email" else "twilio",
            provider_message_id="sg-1" if channel == "email" else "SM" + "1" * 32,
            sent_at=SENT,
            created_at=SENT,
            updated_at=SENT,
        )
        s.add(d)
        s.flush()
        return d.id


def delivery(sessions: sessionmaker[Session], delivery_id: int) -> Delivery:
    with sessions() as s:
        d = s.get(Delivery, delivery_id)
        assert d is not None
        return d


def suppressions(sessions: sessionmaker[Session]) -> set[tuple[str, str, str]]:
    with sessions() as s:
        return {(r.channel, r.address, r.reason) for r in s.scalars(select(Suppression))}


def event_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(ProviderEvent)) or 0)


def snapshot(sessions: sessionmaker[Session], delivery_id: int) -> tuple[Any, ...]:
    d = delivery(sessions, delivery_id)
    return (
        d.provider_status,
        d.provider_status_at,
        d.opened_at,
        d.clicked_at,
        suppressions(sessions),
        event_count(sessions),
    )


def post_sendgrid(client: TestClient, signer: SendGridSigner, body: bytes, at: dt.datetime = NOW) -> Any:
    return client.post("/webhooks/sendgrid", content=body, headers=signer.headers(body, at))


# ------------------------------------------------------------------ SendGrid


def test_signed_batch_sets_delivery_state_and_engagement(
    client: TestClient, signer: SendGridSigner, sessions: sessionmaker[Session]
) -> None:
    did = seed(sessions)
    at = SENT + dt.timedelta(minutes=1)
    body = batch(
        sendgrid_event("processed", "e1", at, did),
        sendgrid_event("delivered", "e2", at + dt.timedelta(seconds=5), did),
        sendgrid_event("click", "e4", at + dt.timedelta(minutes=12), did, url="https://example.com/x"),
        sendgrid_event("open", "e3", at + dt.timedelta(minutes=10), did),
    )
    response = post_sendgrid(client, signer, body)
    assert response.status_code == 200
    d = delivery(sessions, did)
    assert d.provider_status == "delivered"
    assert d.provider_status_at == at + dt.timedelta(seconds=5)
    assert d.opened_at == at + dt.timedelta(minutes=10)
    assert d.clicked_at == at + dt.timedelta(minutes=12)
    assert event_count(sessions) == 4
    assert suppressions(sessions) == set()
    with sessions() as s:
        payloads = [e.payload for e in s.scalars(select(ProviderEvent))]
    assert all("email" not in p and "url" not in p for p in payloads)  # no PII kept


def test_replayed_events_have_no_second_effect(
    client: TestClient, signer: SendGridSigner, sessions: sessionmaker[Session]
) -> None:
    did = seed(sessions)
    first = SENT + dt.timedelta(minutes=10)
    body = batch(sendgrid_event("open", "open-1", first, did))
    assert post_sendgrid(client, signer, body).status_code == 200
    before = snapshot(sessions, did)

    # The same request again, and the same event re-signed later: accepted, no change.
    assert post_sendgrid(client, signer, body).status_code == 200
    assert post_sendgrid(client, signer, body, NOW - dt.timedelta(minutes=2)).status_code == 200
    # The same event id twice in one batch counts once.
    twice = batch(sendgrid_event("click", "c-1", first, did), sendgrid_event("click", "c-1", first, did))
    assert post_sendgrid(client, signer, twice).status_code == 200
    after = snapshot(sessions, did)
    assert after[:2] == before[:2] and after[2] == first
    assert after[5] == before[5] + 1


def test_a_late_delivered_never_overwrites_a_bounce(
    client: TestClient, signer: SendGridSigner, sessions: sessionmaker[Session]
) -> None:
    did = seed(sessions)
    bounce_at = SENT + dt.timedelta(minutes=2)
    body = batch(sendgrid_event("bounce", "b1", bounce_at, did, type="bounce", reason="550 no such user"))
    assert post_sendgrid(client, signer, body).status_code == 200
    late = batch(
        sendgrid_event("delivered", "d1", SENT + dt.timedelta(minutes=5), did),
        sendgrid_event("processed", "p1", SENT, did),
    )
    assert post_sendgrid(client, signer, late).status_code == 200
    d = delivery(sessions, did)
    assert (d.provider_status, d.provider_status_at) == ("bounced", bounce_at)
    assert suppressions(sessions) == {("email", "ada@example.com", "bounce")}


def test_a_deferral_then_delivery_ends_delivered_whatever_the_arrival_order(
    client: TestClient, signer: SendGridSigner, sessions: sessionmaker[Session]
) -> None:
    did = seed(sessions)
    delivered_at = SENT + dt.timedelta(minutes=30)
    body = batch(sendgrid_event("delivered", "d1", delivered_at, did))
    assert post_sendgrid(client, signer, body).status_code == 200
    body = batch(sendgrid_event("deferred", "f1", SENT + dt.timedelta(minutes=1), did))
    assert post_sendgrid(client, signer, body).status_code == 200
    assert delivery(sessions, did).provider_status == "delivered"


@pytest.mark.parametrize(
    ("kind", "extra", "reason"),
    [
        ("bounce", {"type": "bounce"}, "bounce"),
        ("bounce", {"type": "blocked"}, None),
        ("dropped", {"reason": "Invalid"}, "invalid"),
        ("dropped", {"reason": "Bounced Address"}, "bounce"),
        ("dropped", {"reason": "Spam Content (if spam checker app enabled)"}, None),
        ("spamreport", {}, "spamreport"),
        ("unsubscribe", {}, "unsubscribe"),
        ("group_unsubscribe", {"asm_group_id": 1}, "group_unsubscribe"),
        ("deferred", {}, None),
    ],
)
def test_events_that_condemn_the_address_suppress_it(
    client: TestClient,
    signer: SendGridSigner,
    sessions: sessionmaker[Session],
    kind: str,
    extra: dict[str, Any],
    reason: str | None,
) -> None:
    did = seed(sessions)
    body = batch(sendgrid_event(kind, "x1", SENT + dt.timedelta(minutes=3), did, **extra))
    assert post_sendgrid(client, signer, body).status_code == 200
    expected = {("email", "ada@example.com", reason)} if reason else set()
    assert suppressions(sessions) == expected


def test_group_resubscribe_lifts_a_group_unsubscribe_but_not_a_bounce(
    client: TestClient, signer: SendGridSigner, sessions: sessionmaker[Session]
) -> None:
    did = seed(sessions)
    later = SENT + dt.timedelta(days=1)
    body = batch(
        sendgrid_event("group_resubscribe", "r1", later, did),
        sendgrid_event("group_unsubscribe", "u1", SENT, did),
    )
    assert post_sendgrid(client, signer, body).status_code == 200
    assert suppressions(sessions) == set()
    body = batch(
        sendgrid_event("bounce", "b1", later, did), sendgrid_event("group_resubscribe", "r2", later, did)
    )
    assert post_sendgrid(client, signer, body).status_code == 200
    assert suppressions(sessions) == {("email", "ada@example.com", "bounce")}


def test_an_event_for_no_known_delivery_still_suppresses_the_address(
    client: TestClient, signer: SendGridSigner, sessions: sessionmaker[Session]
) -> None:
    body = batch(sendgrid_event("spamreport", "s1", SENT, None, email="someone@example.com"))
    assert post_sendgrid(client, signer, body).status_code == 200
    assert suppressions(sessions) == {("email", "someone@example.com", "spamreport")}
    assert event_count(sessions) == 1


def test_a_bounce_for_no_known_delivery_suppresses_the_address_in_its_normal_form(
    client: TestClient, signer: SendGridSigner, sessions: sessionmaker[Session]
) -> None:
    body = batch(sendgrid_event("bounce", "b1", SENT, None, email="  Ada@Example.COM", type="bounce"))
    assert post_sendgrid(client, signer, body).status_code == 200
    assert suppressions(sessions) == {("email", "ada@example.com", "bounce")}
    resubscribe = sendgrid_event("group_resubscribe", "r1", SENT, None, email="ADA@example.com")
    unsubscribe = sendgrid_event("group_unsubscribe", "u1", SENT, None, email="Ada@Example.com")
    assert post_sendgrid(client, signer, batch(unsubscribe)).status_code == 200
    assert post_sendgrid(client, signer, batch(resubscribe)).status_code == 200
    assert suppressions(sessions) == {("email", "ada@example.com", "bounce")}


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("unsigned", 401),
        ("forged", 401),
        ("tampered", 401),
        ("stale", 401),
        ("future", 401),
        ("garbage_signature", 401),
        ("odd_timestamp", 401),
        ("huge_timestamp", 401),
        ("not_json", 400),
        ("not_a_list", 400),
        ("no_event_id", 400),
        ("bad_timestamp", 400),
    ],
)
def test_bad_sendgrid_requests_are_refused_and_change_nothing(
    client: TestClient, signer: SendGridSigner, sessions: sessionmaker[Session], case: str, status: int
) -> None:
    did = seed(sessions)
    good = batch(sendgrid_event("bounce", "b1", SENT, did, type="bounce"))
    before = snapshot(sessions, did)
    body, headers = good, signer.headers(good, NOW)
    if case == "unsigned":
        headers = {"Content-Type": "application/json"}
    elif case == "forged":
        headers = SendGridSigner().headers(good, NOW)
    elif case == "tampered":
        body = good.replace(b"bounce", b"delivered", 1)
    elif case == "stale":
        headers = signer.headers(good, NOW - dt.timedelta(minutes=6))
    elif case == "future":
        headers = signer.headers(good, NOW + dt.timedelta(minutes=6))
    elif case in ("odd_timestamp", "huge_timestamp"):
        value = "²".encode("latin-1") if case == "odd_timestamp" else b"9" * 30
        headers = {**headers, "X-Twilio-Email-Event-Webhook-Timestamp": value}
    elif case == "garbage_signature":
        headers = {**headers, "X-Twilio-Email-Event-Webhook-Signature": "not base64!"}
    else:
        body = {
            "not_json": b"{not json",
            "not_a_list": b'{"event": "bounce"}',
            "no_event_id": batch({"event": "bounce", "timestamp": 1}),
            "bad_timestamp": batch({**sendgrid_event("open", "o1", SENT, did), "timestamp": "yesterday"}),
        }[case]
        headers = signer.headers(body, NOW)
    response = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert response.status_code == status
    assert snapshot(sessions, did) == before


def test_without_a_public_key_sendgrid_events_are_refused(
    env: dict[str, str], sessions: sessionmaker[Session], signer: SendGridSigner
) -> None:
    did = seed(sessions)
    with TestClient(create_app(load_settings(), sessions, clock=lambda: NOW)) as c:
        body = batch(sendgrid_event("bounce", "b1", SENT, did))
        assert (
            c.post("/webhooks/sendgrid", content=body, headers=signer.headers(body, NOW)).status_code == 403
        )
    assert event_count(sessions) == 0


# ------------------------------------------------------------------ Twilio


def status_params(status: str, error: str = "") -> dict[str, str]:
    params = {
        "MessageSid": "SM" + "1" * 32,
        "MessageStatus": status,
        "AccountSid": "AC" + "0" * 32,
        "To": PHONE,
        "From": "+15550000000",
    }
    if error:
        params["ErrorCode"] = error
    return params


def test_twilio_status_callbacks_follow_the_message(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    did = seed(sessions, "sms", PHONE)
    path = f"/webhooks/twilio/status?delivery_id={did}"
    for status in ("queued", "sent", "delivered"):
        body, headers = twilio_post(path, status_params(status))
        assert client.post(path, content=body, headers=headers).status_code == 204
        assert delivery(sessions, did).provider_status == status
    body, headers = twilio_post(path, status_params("sent"))  # late
    assert client.post(path, content=body, headers=headers).status_code == 204
    assert delivery(sessions, did).provider_status == "delivered"
    assert suppressions(sessions) == set()


def test_twilio_undelivered_21610_suppresses_the_number(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    did = seed(sessions, "sms", PHONE)
    # No delivery id in the URL: matched by the message sid.
    path = "/webhooks/twilio/status"
    body, headers = twilio_post(path, status_params("undelivered", "21610"))
    assert client.post(path, content=body, headers=headers).status_code == 204
    body, headers = twilio_post(path, status_params("delivered"))
    assert client.post(path, content=body, headers=headers).status_code == 204
    d = delivery(sessions, did)
    assert d.provider_status == "undelivered"
    assert suppressions(sessions) == {("sms", PHONE, "stop")}
    # Twilio resends: no second event.
    before = event_count(sessions)
    body, headers = twilio_post(path, status_params("undelivered", "21610"))
    assert client.post(path, content=body, headers=headers).status_code == 204
    assert event_count(sessions) == before


@pytest.mark.parametrize("case", ["unsigned", "forged", "other_url", "tampered", "malformed", "not_form"])
def test_bad_twilio_status_callbacks_are_refused(
    client: TestClient, sessions: sessionmaker[Session], case: str
) -> None:
    did = seed(sessions, "sms", PHONE)
    path = f"/webhooks/twilio/status?delivery_id={did}"
    params = status_params("failed", "21610")
    body, headers = twilio_post(path, params)
    if case == "unsigned":
        del headers["X-Twilio-Signature"]
    elif case == "forged":
        body, headers = twilio_post(path, params, token="not-the-token")
    elif case == "other_url":
        _, headers = twilio_post(f"/webhooks/twilio/status?delivery_id={did + 1}", params)
    elif case == "tampered":
        body = body.replace(b"21610", b"30003")
    elif case == "malformed":
        body, headers = twilio_post(path, {**params, "MessageStatus": "exploded"})
    elif case == "not_form":
        headers = {**headers, "Content-Type": "application/json"}
    before = snapshot(sessions, did)
    response = client.post(path, content=body, headers=headers)
    assert 400 <= response.status_code < 500
    assert snapshot(sessions, did) == before


def inbound(client: TestClient, text: str, sid: str) -> Any:
    path = "/webhooks/twilio/inbound"
    params = {"MessageSid": sid, "From": PHONE, "To": "+15550000000", "Body": text, "AccountSid": "AC1"}
    body, headers = twilio_post(path, params)
    return client.post(path, content=body, headers=headers)


def test_stop_and_start_replies_toggle_the_sms_suppression(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    response = inbound(client, "  Stop ", "SMa")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert suppressions(sessions) == {("sms", PHONE, "stop")}
    assert inbound(client, "thanks!", "SMb").status_code == 200
    assert suppressions(sessions) == {("sms", PHONE, "stop")}
    assert inbound(client, "unstop", "SMc").status_code == 200
    assert suppressions(sessions) == set()
    for i, word in enumerate(["STOPALL", "unsubscribe", "Cancel", "end", "QUIT", "optout", "REVOKE"]):
        assert inbound(client, word, f"SMs{i}").status_code == 200
        assert suppressions(sessions) == {("sms", PHONE, "stop")}
        assert inbound(client, ["START", "yes"][i % 2], f"SMr{i}").status_code == 200
        assert suppressions(sessions) == set()


def test_a_forged_stop_changes_nothing(client: TestClient, sessions: sessionmaker[Session]) -> None:
    path = "/webhooks/twilio/inbound"
    params = {"MessageSid": "SMx", "From": PHONE, "Body": "STOP"}
    body, headers = twilio_post(path, params, token="guess")
    assert client.post(path, content=body, headers=headers).status_code == 401
    assert suppressions(sessions) == set() and event_count(sessions) == 0


# ------------------------------------------------------------------ unsubscribe


def choices(sessions: sessionmaker[Session]) -> dict[str, tuple[bool, str]]:
    with sessions() as s:
        return {t: (c.subscribed, c.how) for t, c in topic_choices.of(s, ["c1"]).get("c1", {}).items()}


def test_the_preference_link_shows_a_page_then_leaves_every_topic_on_post(
    client: TestClient, web_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    did = seed(sessions)
    token = unsubscribe_token(did, web_settings.unsubscribe_secret.get_secret_value())
    page = client.get(f"/unsubscribe/{token}")
    assert page.status_code == 200 and '<form method="post"' in page.text
    assert choices(sessions) == {}  # a link scanner's GET changes nothing
    done = client.post(f"/unsubscribe/{token}")
    assert done.status_code == 200 and "You are unsubscribed from every topic" in done.text
    off = (False, "link")
    assert choices(sessions) == {"marketing": off, "promotions": off, "loyalty": off, "newsletter": off}
    assert suppressions(sessions) == set()  # receipts still reach the address


def test_one_click_unsubscribe_leaves_the_message_topic(
    client: TestClient, web_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    did = seed(sessions)
    token = unsubscribe_token(did, web_settings.unsubscribe_secret.get_secret_value())
    response = client.post(
        f"/unsubscribe/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert choices(sessions) == {"marketing": (False, "one-click")}  # post_purchase_thanks names no topic


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_bad_unsubscribe_token_is_404_and_changes_nothing(
    client: TestClient, web_settings: Settings, sessions: sessionmaker[Session], method: str
) -> None:
    did = seed(sessions)
    secret = web_settings.unsubscribe_secret.get_secret_value()
    forged = unsubscribe_token(did, "another-secret")
    other_id = f"{did + 1}.{unsubscribe_token(did, secret).split('.')[1]}"
    missing = unsubscribe_token(did + 100, secret)
    for token in (forged, other_id, missing, "nonsense", "².abc", "9" * 40 + ".abc"):
        response = client.request(method, f"/unsubscribe/{token}")
        assert response.status_code == 404
        assert "not valid" in response.text
    assert suppressions(sessions) == set() and choices(sessions) == {}


# ------------------------------------------------------------------ health and metrics


def test_metrics_show_the_ledger_and_webhook_outcomes(
    client: TestClient, signer: SendGridSigner, sessions: sessionmaker[Session]
) -> None:
    did = seed(sessions)
    body = batch(sendgrid_event("delivered", "d1", SENT, did), sendgrid_event("open", "o1", SENT, did))
    assert post_sendgrid(client, signer, body).status_code == 200
    client.post("/webhooks/sendgrid", content=body)  # unsigned: rejected
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'automation_deliveries{channel="email",journey="post_purchase_thanks",status="sent"} 1.0' in text
    assert 'automation_webhook_events_total{provider="sendgrid",type="delivered"} 1.0' in text
    assert 'automation_webhook_events_total{provider="sendgrid",type="open"} 1.0' in text
    assert 'automation_webhook_requests_total{endpoint="sendgrid",outcome="accepted"} 1.0' in text
    assert 'automation_webhook_requests_total{endpoint="sendgrid",outcome="rejected"} 1.0' in text
    assert 'automation_queue_messages{queue="deliveries"} 0.0' in text
    assert "automation_ledger_up 1.0" in text


# ------------------------------------------------------------------ the loop through the worker

SMS_JOURNEY = """\
id: sms_thanks
name: Thanks by SMS
trigger:
  event: {name: order_placed}
audience: {trait: phone, exists: true}
frequency_cap: false
quiet_hours: false
steps:
  - send: {id: thanks, channel: sms, template: sms_thanks}
"""


def test_sms_status_callback_and_stop_close_the_loop(
    web_settings: Settings, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, twilio: Any
) -> None:
    """The worker asks Twilio to call back with the delivery id; STOP stops the next SMS."""
    journeys, templates = tmp_path / "sms-journeys", tmp_path / "sms-templates"
    journeys.mkdir()
    (journeys / "sms_thanks.yaml").write_text(SMS_JOURNEY)
    shutil.copytree(ROOT / "templates" / "_layouts", templates / "_layouts")
    (templates / "sms_thanks").mkdir()
    (templates / "sms_thanks" / "sms.txt").write_text(
        "Thanks {{ customer.first_name }}! Reply STOP to opt out."
    )
    monkeypatch.setenv("AUTOMATION_JOURNEYS_DIR", str(journeys))
    monkeypatch.setenv("AUTOMATION_TEMPLATES_DIR", str(templates))
    flow = Flow(load_settings())
    try:
        flow.ingest(
            [
                identify("c1", "2026-01-01T00:00:00Z", phone=PHONE, first_name="Ada", sms_opt_in=True),
                track("c1", "order_placed", "2026-11-22T11:00:00Z", "o-1", total=5),
            ]
        )
        flow.run("2026-11-22T11:30:00Z")
        [row] = flow.deliveries()
        [sms] = twilio.accepted
        assert row.status == "sent" and sms.body["To"] == PHONE
        callback = sms.body["StatusCallback"]
        assert callback == f"{PUBLIC_URL}/webhooks/twilio/status?delivery_id={row.id}"

        with TestClient(create_app(load_settings(), flow.runtime.sessions, clock=lambda: NOW)) as client:
            path = callback.removeprefix(PUBLIC_URL)
            params = {**status_params("delivered"), "MessageSid": row.provider_message_id or ""}
            body, headers = twilio_post(path, params)
            assert client.post(path, content=body, headers=headers).status_code == 204
            assert inbound(client, "STOP", "SM-reply-1").status_code == 200

        [row] = flow.deliveries()
        assert (row.provider_status, row.provider_status_at) == ("delivered", NOW)
        flow.ingest([track("c1", "order_placed", "2026-11-22T12:00:00Z", "o-2", total=6)])
        flow.run("2026-11-22T12:30:00Z")
        second = flow.deliveries()[1]
        assert (second.status, second.reason) == ("suppressed", "address suppressed (stop)")
        assert len(twilio.accepted) == 1
    finally:
        flow.close()
