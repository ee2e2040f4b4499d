"""Channels and send-time rules on real PostgreSQL, Redis and the SDKs against the stand-ins."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from sqlalchemy import select

from automation.config import Settings
from automation.store.models import Suppression
from tests.deliverykit import event, flow, kit_env, kit_settings, person
from tests.harness import Flow, cli
from tests.standins import Reply, SendGridStandIn, TwilioStandIn

__all__ = ["flow", "kit_env", "kit_settings"]

NOW = "2026-11-22T12:00:00Z"
EARLIER = "2026-11-22T11:00:00Z"


def only(flow: Flow, **where: object):
    [row] = flow.deliveries(**where)
    return row


# ----------------------------------------------------------------- SMS


def test_sms_through_twilio_from_a_number_records_segments(flow: Flow, twilio: TwilioStandIn) -> None:
    flow.ingest([person("ada"), event("ada", "text", EARLIER)])
    flow.run(NOW)
    row = only(flow)
    assert row.status == "sent", row.reason
    [sms] = twilio.accepted
    assert sms.body["From"] == "+15550000000"
    assert sms.body["To"] == row.address
    assert sms.body["Body"].startswith("Hi Ada, your beans are ready.")
    assert row.provider_message_id == "SM" + "1".rjust(32, "0")
    assert row.segments == 1 and row.provider == "twilio"


def test_sms_from_a_messaging_service(kit_settings: Settings, twilio: TwilioStandIn) -> None:
    flow = Flow(kit_settings.model_copy(update={"sms_from": "MG" + "a" * 32}))
    try:
        flow.ingest([person("ada"), event("ada", "text", EARLIER)])
        flow.run(NOW)
    finally:
        flow.close()
    [sms] = twilio.accepted
    assert sms.body["MessagingServiceSid"] == "MG" + "a" * 32
    assert "From" not in sms.body


def test_ucs2_segments_are_counted_and_a_journey_maximum_holds(flow: Flow, twilio: TwilioStandIn) -> None:
    flow.ingest(
        [
            person("ada"),
            person("bob"),
            event("ada", "text_unicode", EARLIER),
            event("bob", "text_long", EARLIER),
        ]
    )
    flow.run(NOW)
    unicode_row = only(flow, journey_id="text_unicode")
    assert unicode_row.status == "sent" and unicode_row.segments == 3  # ☕ makes it UCS-2: 140+ chars / 67
    long_row = only(flow, journey_id="text_long")
    assert long_row.status == "failed"
    assert long_row.reason == "SMS is 3 segments, over the maximum 1"
    assert len(twilio.accepted) == 1


# ----------------------------------------------------------------- outbox


def test_outbox_writes_eml_and_sms_files(kit_settings: Settings, tmp_path: Path) -> None:
    settings = kit_settings.model_copy(update={"email_provider": "outbox", "sms_provider": "outbox"})
    flow = Flow(settings)
    try:
        flow.ingest([person("ada"), event("ada", "news", EARLIER), event("ada", "text", EARLIER)])
        flow.run(NOW)
        mail_row, sms_row = only(flow, channel="email"), only(flow, channel="sms")
    finally:
        flow.close()
    assert mail_row.status == sms_row.status == "sent" and mail_row.provider == "outbox"
    [eml] = (settings.outbox_dir / "email").glob("*.eml")
    parsed = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert parsed["To"] == "Ada <ada@example.com>"
    assert parsed["Subject"] == "News for Ada"
    assert parsed["X-Automation-Delivery-Id"] == str(mail_row.id)
    assert parsed["List-Unsubscribe"].strip().startswith("<https://hooks.example.com/unsubscribe/")
    text = parsed.get_body(("plain",))
    assert text is not None and "Hi Ada, news." in text.get_content()
    [sms] = (settings.outbox_dir / "sms").glob("*.txt")
    head, body = sms.read_text().split("\n\n", 1)
    assert head.splitlines()[:2] == ["From: +15550000000", f"To: {sms_row.address}"]
    assert head.splitlines()[2].startswith("Date: ") and body.startswith("Hi Ada, your beans")


# ----------------------------------------------------------------- consent


def test_consent(flow: Flow, sendgrid: SendGridStandIn, twilio: TwilioStandIn) -> None:
    flow.ingest(
        [
            person("ada", email_opt_in=False, sms_opt_in=False),
            event("ada", "news", EARLIER),
            event("ada", "receipt", EARLIER),
            event("ada", "text_receipt", EARLIER),
        ]
    )
    flow.run(NOW)
    assert only(flow, journey_id="news").reason == "consent: no email_opt_in"
    assert only(flow, journey_id="news").status == "skipped"
    assert only(flow, journey_id="receipt").status == "sent"  # transactional email needs no opt-in
    sms = only(flow, journey_id="text_receipt")  # SMS always needs it
    assert (sms.status, sms.reason) == ("skipped", "consent: no sms_opt_in")
    assert len(sendgrid.accepted) == 1 and twilio.accepted == []


def test_a_step_if_that_does_not_hold_is_skipped_with_its_reason(
    flow: Flow, sendgrid: SendGridStandIn
) -> None:
    flow.ingest(
        [
            person("ada", tier="gold"),
            person("bob", tier="silver"),
            event("ada", "gold", EARLIER),
            event("bob", "gold", EARLIER),
        ]
    )
    flow.run(NOW)
    assert only(flow, customer_id="ada").status == "sent"
    bob = only(flow, customer_id="bob")
    assert (bob.status, bob.reason) == ("skipped", "if: tier eq 'gold' does not hold")
    assert len(sendgrid.accepted) == 1


# ----------------------------------------------------------------- suppressions


def test_suppression_commands_and_their_effect(
    flow: Flow, kit_env: dict[str, str], sendgrid: SendGridStandIn, twilio: TwilioStandIn, tmp_path: Path
) -> None:
    added = cli("suppress", "add", "email", " ADA@example.com ", "--reason", "asked by phone", env=kit_env)
    assert added.returncode == 0, added.stderr
    assert "suppressed email ada@example.com" in added.stdout
    again = cli("suppress", "add", "email", "ada@example.com", env=kit_env)
    assert "already suppressed" in again.stdout
    bad = cli("suppress", "add", "sms", "12345", env=kit_env)
    assert bad.returncode == 1 and bad.stderr.startswith("error: '12345' is not a phone number")
    assert len(bad.stderr.strip().splitlines()) == 1

    flow.ingest([person("ada"), person("bob"), event("ada", "news", EARLIER), event("bob", "text", EARLIER)])
    bob_phone = flow.deliveries() and None
    listing_file = tmp_path / "stops.txt"
    with flow.runtime.sessions() as s:
        from automation.store.models import Customer

        bob_phone = s.get(Customer, "bob").phone
    listing_file.write_text(f"# from the old tool\n{bob_phone}\nnot-a-phone\n")
    imported = cli("suppress", "import", str(listing_file), env=kit_env)
    assert imported.returncode == 1
    assert f"{listing_file}:3: 'not-a-phone' is not a phone number" in imported.stderr
    assert "suppressed 1 new, 0 already suppressed, rejected 1" in imported.stdout

    flow.run(NOW)
    mail = only(flow, journey_id="news")
    assert (mail.status, mail.reason) == ("suppressed", "address suppressed (asked by phone)")
    assert only(flow, journey_id="text").reason == "address suppressed (import)"
    assert sendgrid.accepted == [] and twilio.accepted == []

    listed = cli("suppress", "list", "email", env=kit_env)
    assert "ada@example.com" in listed.stdout and "asked by phone" in listed.stdout
    assert bob_phone not in listed.stdout and "1 suppressed" in listed.stdout
    assert cli("suppress", "remove", "email", "ada@example.com", env=kit_env).returncode == 0
    gone = cli("suppress", "remove", "email", "ada@example.com", env=kit_env)
    assert gone.returncode == 1 and "is not suppressed" in gone.stderr

    flow.ingest([event("ada", "receipt", "2026-11-23T11:00:00Z")])
    flow.run("2026-11-23T12:00:00Z")
    assert only(flow, journey_id="receipt").status == "sent"


def test_sendgrid_400_naming_the_recipient_suppresses_it(flow: Flow, sendgrid: SendGridStandIn) -> None:
    sendgrid.queue(
        Reply(
            400,
            {
                "errors": [
                    {
                        "message": "Does not contain a valid address.",
                        "field": "personalizations.0.to.0.email",
                    }
                ]
            },
        )
    )
    flow.ingest([person("ada"), event("ada", "receipt", EARLIER)])
    flow.run(NOW)
    row = only(flow)
    assert row.status == "failed" and row.attempts == 1
    assert row.reason == "sendgrid 400: Does not contain a valid address."
    with flow.runtime.sessions() as s:
        [sup] = s.scalars(select(Suppression))
    assert (sup.channel, sup.address, sup.reason, sup.source) == (
        "email",
        "ada@example.com",
        "invalid",
        "provider",
    )

    flow.ingest([event("ada", "receipt", "2026-11-22T12:30:00Z")])
    flow.run("2026-11-22T13:00:00Z")
    second = flow.deliveries()[-1]
    assert second.status == "suppressed" and sendgrid.accepted == []


def test_other_4xx_fail_at_once_without_suppression(flow: Flow, sendgrid: SendGridStandIn) -> None:
    sendgrid.queue(
        Reply(
            403,
            {
                "errors": [
                    {
                        "message": "The from address does not match a verified Sender Identity.",
                        "field": "from",
                    }
                ]
            },
        )
    )
    flow.ingest([person("ada"), event("ada", "receipt", EARLIER)])
    flow.run(NOW)
    row = only(flow)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "does not match a verified Sender Identity" in (row.reason or "")
    with flow.runtime.sessions() as s:
        assert s.scalars(select(Suppression)).all() == []


def test_twilio_invalid_number_and_stop_suppress(flow: Flow, twilio: TwilioStandIn) -> None:
    twilio.queue(
        Reply(400, {"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400}),
        Reply(400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}),
    )
    flow.ingest([person("ada"), person("bob"), event("ada", "text", EARLIER)])
    flow.run(NOW)
    flow.ingest([event("bob", "text", "2026-11-22T12:30:00Z")])
    flow.run("2026-11-22T13:00:00Z")
    ada, bob = only(flow, customer_id="ada"), only(flow, customer_id="bob")
    assert ada.status == bob.status == "failed"
    assert "code 21211" in (ada.reason or "") and "code 21610" in (bob.reason or "")
    with flow.runtime.sessions() as s:
        reasons = {r.address: r.reason for r in s.scalars(select(Suppression))}
    assert reasons == {ada.address: "invalid", bob.address: "stop"}
    assert twilio.accepted == []


# ----------------------------------------------------------------- quiet hours


def test_quiet_hours_defer_to_the_next_local_morning(flow: Flow, sendgrid: SendGridStandIn) -> None:
    # 22:00 in New York (UTC-5 in November) is 03:00 UTC.
    flow.ingest(
        [
            person("ada", tz="America/New_York"),
            person("bob", tz="America/New_York"),
            person("cy", tz="America/New_York"),
            event("ada", "news", "2026-11-22T02:30:00Z"),
            event("bob", "late", "2026-11-22T02:30:00Z"),
            event("cy", "late_custom", "2026-11-22T02:30:00Z"),
        ]
    )
    flow.run("2026-11-22T03:00:00Z")
    news = only(flow, journey_id="news")
    assert (news.status, news.reason) == ("deferred", "quiet hours")
    assert news.due_at.isoformat() == "2026-11-22T13:00:00+00:00"  # 08:00 local
    assert only(flow, journey_id="late_ok").status == "sent"  # quiet_hours: false
    assert only(flow, journey_id="late_custom").status == "sent"  # 22:00 is before its 23:00 start

    assert flow.run("2026-11-22T12:59:00Z").released == 0
    assert only(flow, journey_id="news").status == "deferred"
    report = flow.run("2026-11-22T13:00:00Z")
    assert report.released == 1
    news = only(flow, journey_id="news")
    assert news.status == "sent" and news.due_at.isoformat() == "2026-11-22T13:00:00+00:00"
    assert len(sendgrid.messages()) == 3


def test_a_journey_sets_its_own_quiet_hours(flow: Flow) -> None:
    # 23:30 local: inside late_custom's 23:00-06:30.
    flow.ingest([person("ada", tz="America/New_York"), event("ada", "late_custom", "2026-11-22T04:00:00Z")])
    flow.run("2026-11-22T04:30:00Z")
    row = only(flow)
    assert row.status == "deferred" and row.due_at.isoformat() == "2026-11-22T11:30:00+00:00"


# ----------------------------------------------------------------- caps


def test_three_journeys_at_once_send_one_email_a_day_and_the_third_goes_stale(
    flow: Flow, sendgrid: SendGridStandIn
) -> None:
    # Due at NOW: a day's deferral is exactly the 24h of `send_within`, still in time.
    flow.ingest([person("ada"), event("ada", "promo", NOW)])
    flow.run(NOW)  # three deliveries, four worker threads judging them at the same time
    rows = flow.deliveries()
    assert sorted(r.status for r in rows) == ["deferred", "deferred", "sent"]
    for r in rows:
        if r.status == "deferred":
            assert r.reason == "frequency cap"
            assert r.due_at.isoformat() == "2026-11-23T12:00:00+00:00"
    flow.run("2026-11-23T12:00:00Z")
    # A second day's deferral would carry the third past `send_within` (default 24h) of falling due.
    rows = flow.deliveries()
    assert sorted(r.status for r in rows) == ["sent", "sent", "skipped"]
    [stale] = [r for r in rows if r.status == "skipped"]
    assert stale.reason == "stale: not sent within 1d of falling due (frequency cap)"
    assert len(sendgrid.messages()) == 2
    due = sorted(r.due_at.isoformat() for r in rows if r.status == "sent")
    assert due == ["2026-11-22T12:00:00+00:00", "2026-11-23T12:00:00+00:00"]


def test_weekly_cap_skip_action_and_transactional_exemption(flow: Flow, sendgrid: SendGridStandIn) -> None:
    flow.ingest([person("ada")])
    for day in (22, 23, 24, 25):
        flow.ingest([event("ada", "news", f"2026-11-{day}T11:00:00Z")])
        flow.run(f"2026-11-{day}T12:00:00Z")
    statuses = [(r.status, r.due_at.day) for r in flow.deliveries(journey_id="news")]
    assert statuses == [("sent", 22), ("sent", 23), ("sent", 24), ("deferred", 29)]  # 3 a week

    flow.ingest(
        [event("ada", "news_skip", "2026-11-25T12:30:00Z"), event("ada", "receipt", "2026-11-25T12:30:00Z")]
    )
    flow.run("2026-11-25T13:00:00Z")
    skipped = only(flow, journey_id="news_skip")
    assert (skipped.status, skipped.reason) == ("skipped", "frequency cap")
    assert only(flow, journey_id="receipt").status == "sent"  # transactional: exempt, and not counted
    assert len(sendgrid.messages()) == 4


def test_sms_cap_is_a_setting(kit_settings: Settings, twilio: TwilioStandIn) -> None:
    flow = Flow(kit_settings.model_copy(update={"sms_cap_day": 2}))
    try:
        flow.ingest([person("ada")])
        for n, hour in enumerate((9, 10, 11), 1):
            flow.ingest([event("ada", "text", f"2026-11-22T{hour:02d}:00:00Z", n)])
            flow.run(f"2026-11-22T{hour:02d}:00:00Z")
        assert [r.status for r in flow.deliveries()] == ["sent", "sent", "deferred"]
        assert flow.deliveries()[-1].due_at.isoformat() == "2026-11-23T09:00:00+00:00"
    finally:
        flow.close()
    assert len(twilio.accepted) == 2


# ----------------------------------------------------------------- the ledger


def test_deliveries_list(flow: Flow, kit_env: dict[str, str]) -> None:
    kit_env = {**kit_env, "COLUMNS": "200"}
    flow.ingest(
        [
            person("ada"),
            person("bob", email_opt_in=False),
            event("ada", "news", EARLIER),
            event("bob", "news", EARLIER),
        ]
    )
    flow.run(NOW)
    everything = cli("deliveries", "list", env=kit_env)
    assert everything.returncode == 0, everything.stderr
    assert "2 deliveries shown" in everything.stdout
    skipped = cli("deliveries", "list", "--status", "skipped", "--journey", "news", env=kit_env)
    assert "bob" in skipped.stdout and "consent: no email_opt_in" in skipped.stdout
    assert "ada" not in skipped.stdout.replace("1 deliveries", "")
    one = cli("deliveries", "list", "--customer", "ada", "--limit", "1", env=kit_env)
    assert "1 deliveries shown" in one.stdout and "sent" in one.stdout
    bad = cli("deliveries", "list", "--status", "lost", env=kit_env)
    assert bad.returncode == 1 and bad.stderr.startswith("error: unknown status 'lost'")
