"""`automation journeys test`: one real message, rendered for a customer, sent to the operator.

Through the real SendGrid and Twilio SDKs to the stand-ins; recorded apart from
the delivery ledger, so no report counts it.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from automation.store.models import Delivery, TestSend
from tests.harness import cli, identify, track
from tests.standins import Reply, SendGridStandIn, TwilioStandIn

NOW = "2026-11-22T12:00:00Z"


def ingest(env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "ada.jsonl"
    records = [
        identify("c1", "2026-01-01T00:00:00Z", email="ada@example.com", first_name="Ada", email_opt_in=False),
        track("c1", "order_placed", "2026-11-22T09:00:00Z", "o-1", total=42.5, currency="EUR"),
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert cli("ingest", str(data), env=env).returncode == 0


def test_a_test_email_goes_to_the_given_address_marked_and_outside_the_ledger(
    env: dict[str, str], tmp_path: Path, sendgrid: SendGridStandIn, sessions: sessionmaker[Session]
) -> None:
    ingest(env, tmp_path)
    result = cli(
        "journeys",
        "test",
        "post_purchase_thanks",
        "--customer",
        "c1",
        "--to",
        "Me@Shop.example",
        "--now",
        NOW,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "sent to --to through sendgrid" in result.stdout
    assert "ada@example.com" not in result.stdout + result.stderr
    (message,) = sendgrid.messages()
    assert message["to"] == "me@shop.example"
    assert message["subject"].startswith("[TEST] ")
    assert "Ada" in message["text"]
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0
        (row,) = s.scalars(select(TestSend))
        assert (row.journey_id, row.step_id, row.customer_id, row.channel) == (
            "post_purchase_thanks",
            "thanks",
            "c1",
            "email",
        )
    status = json.loads(cli("status", "--json", env=env).stdout)
    assert all(j["deliveries"]["sent"] == 0 for j in status["journeys"])


def test_a_test_sms_of_a_named_step_goes_through_twilio(
    env: dict[str, str], tmp_path: Path, twilio: TwilioStandIn
) -> None:
    ingest(env, tmp_path)
    result = cli(
        "journeys",
        "test",
        "inactive_60d",
        "--customer",
        "c1",
        "--step",
        "winback-sms",
        "--to",
        "+15557654321",
        "--now",
        NOW,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    (sms,) = twilio.accepted
    assert sms.body["To"] == "+15557654321" and sms.body["Body"].startswith("[TEST] ")


def test_bad_test_sends_are_one_line_and_send_nothing(
    env: dict[str, str], tmp_path: Path, sendgrid: SendGridStandIn, sessions: sessionmaker[Session]
) -> None:
    ingest(env, tmp_path)
    base = ("journeys", "test", "inactive_60d", "--customer", "c1", "--now", NOW)
    step = cli(*base, "--step", "winback-mail", "--to", "me@shop.example", env=env)
    assert step.stderr.strip() == "error: unknown step 'winback-mail' (did you mean 'winback-email'?)"
    address = cli(*base, "--to", "not-an-address", env=env)
    assert address.returncode == 1 and address.stderr.startswith("error: --to: ")
    sendgrid.queue(Reply(400, {"errors": [{"message": "The from address does not match a verified Sender"}]}))
    refused = cli(*base, "--to", "me@shop.example", env=env)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: the provider did not take the test message: ")
    assert sendgrid.messages() == []
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(TestSend)) == 0
