"""Writes each rendered message to a file: `.eml` for email, `.txt` for SMS.

For local work and the demo: open the files to see exactly what would be sent.
An email file is named by its delivery and carries a `Date:` header, as a mail
client expects; every SMS gets a file of its own, so two messages to one
number never overwrite each other. Every recipient's file is built before the
first is written, so a message the outbox cannot build refuses the request
with nothing on disk.
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
from automation.errors import PermanentProviderError


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

    def problem(self, message: EmailMessage | SmsMessage) -> str | None:
        """An email whose headers cannot be written (a control character in a name, say)."""
        if isinstance(message, SmsMessage):
            return None
        try:
            self._mime(message)
        except (ValueError, TypeError) as exc:
            return f"outbox: the email cannot be written: {type(exc).__name__}"
        return None

    def send_email(self, batch: EmailBatch) -> str:
        """Write each recipient's message as the provider would build it; returns the first id."""
        built = []
        for message in batch.expand():
            try:
                built.append((message, *self._mime(message)))
            except (ValueError, TypeError) as exc:
                raise PermanentProviderError(
                    f"outbox: an email cannot be written: {type(exc).__name__}", about_recipient=True
                ) from None
        for message, msgid, data in built:
            key = message.custom_args.get("delivery_id", msgid)
            self._path("email", f"delivery-{key}", ".eml").write_bytes(data)
        return built[0][1]

    def _mime(self, message: EmailMessage) -> tuple[str, bytes]:
        """The message id and the bytes of the `.eml` file."""
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
        return msgid.strip("<>"), bytes(mime)

    def send_sms(self, message: SmsMessage) -> str:
        key = f"{_safe(message.to)}-{uuid.uuid4().hex}"
        path = self._path("sms", key, ".txt")
        sent = format_datetime(self.clock().astimezone(dt.UTC))
        sender = message.sender or "outbox"
        path.write_text(
            f"From: {sender}\nTo: {message.to}\nDate: {sent}\n\n{message.body}\n", encoding="utf-8"
        )
        return f"outbox-{key}"
