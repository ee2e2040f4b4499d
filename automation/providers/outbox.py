"""Writes each rendered message to a file: `.eml` for email, `.txt` for SMS.

For local work and the demo: open the files to see exactly what would be sent.
An email file is named by its delivery and carries a `Date:` header, as a mail
client expects; every SMS gets a file of its own, so two messages to one
number never overwrite each other.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

from automation.core.messages import EmailBatch, EmailMessage, SmsMessage


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:80]


class OutboxProvider:
    name = "outbox"

    def __init__(
        self, directory: Path, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    ) -> None:
        self.directory = directory
        self.clock = clock  # stamps the `Date:` header, as a provider's server would

    def _path(self, kind: str, key: str, suffix: str) -> Path:
        folder = self.directory / kind
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{_safe(key)}{suffix}"

    def send_email(self, batch: EmailBatch) -> str:
        """Write each recipient's message as the provider would build it; returns the first id."""
        ids = [self._write_email(message) for message in batch.expand()]
        return ids[0]

    def _write_email(self, message: EmailMessage) -> str:
        mime = MimeMessage()
        mime["From"] = formataddr((message.from_name or "", message.from_email))
        mime["To"] = formataddr((message.to_name or "", message.to))
        mime["Subject"] = message.subject
        mime["Date"] = format_datetime(self.clock().astimezone(dt.UTC))
        msgid = make_msgid(domain="outbox.local")
        mime["Message-ID"] = msgid
        for name, value in message.headers.items():
            mime[name] = value
        for name, value in message.custom_args.items():
            mime[f"X-Automation-{name.replace('_', '-').title()}"] = value
        mime.set_content(message.text)
        mime.add_alternative(message.html, subtype="html")
        key = message.custom_args.get("delivery_id", msgid.strip("<>"))
        self._path("email", f"delivery-{key}", ".eml").write_bytes(bytes(mime))
        return msgid.strip("<>")

    def send_sms(self, message: SmsMessage) -> str:
        key = f"{_safe(message.to)}-{uuid.uuid4().hex}"
        path = self._path("sms", key, ".txt")
        sent = format_datetime(self.clock().astimezone(dt.UTC))
        path.write_text(
            f"From: {message.sender}\nTo: {message.to}\nDate: {sent}\n\n{message.body}\n", encoding="utf-8"
        )
        return f"outbox-{key}"
