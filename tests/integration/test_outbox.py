"""The outbox provider's files: an `.eml` a mail client opens with its date, one file per SMS."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes
from email.utils import parsedate_to_datetime
from pathlib import Path

from automation.core.messages import EmailBatch, EmailMessage, SmsMessage
from automation.providers.outbox import OutboxProvider

AT = dt.datetime(2026, 11, 22, 12, 30, 5, tzinfo=dt.UTC)


def test_an_email_file_carries_a_date_header(tmp_path: Path) -> None:
    outbox = OutboxProvider(tmp_path, clock=lambda: AT)
    message = EmailMessage(
        to="ada@example.com",
        to_name="Ada",
        from_email="hello@example.com",
        from_name="Shop",
        subject="Hi",
        html="<p>Hi</p>",
        text="Hi",
        custom_args={"delivery_id": "7"},
    )
    outbox.send_email(EmailBatch.single(message))
    parsed = message_from_bytes((tmp_path / "email" / "delivery-7.eml").read_bytes())
    assert parsedate_to_datetime(parsed["Date"]) == AT


def test_two_sms_to_one_number_keep_a_file_each(tmp_path: Path) -> None:
    outbox = OutboxProvider(tmp_path, clock=lambda: AT)
    same = SmsMessage(to="+15551234567", sender="+15550000000", body="See you soon")
    ids = {outbox.send_sms(same), outbox.send_sms(same)}
    files = sorted((tmp_path / "sms").iterdir())
    assert len(ids) == 2 and len(files) == 2
    assert all(f.read_text().startswith("From: +15550000000\nTo: +15551234567\nDate: ") for f in files)
