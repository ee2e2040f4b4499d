"""A recording provider for tests: keeps every message it was given, in memory."""

from __future__ import annotations

import itertools
import threading

from automation.core.messages import EmailBatch, EmailMessage, SmsMessage


class RecordingProvider:
    name = "stub"

    def __init__(self) -> None:
        self.emails: list[EmailMessage] = []
        self.batches: list[EmailBatch] = []
        self.sms: list[SmsMessage] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def problem(self, message: EmailMessage | SmsMessage) -> str | None:
        return None

    def send_email(self, batch: EmailBatch) -> str:
        with self._lock:
            self.batches.append(batch)
            self.emails.extend(batch.expand())
            return f"stub-{next(self._ids)}"

    def send_sms(self, message: SmsMessage) -> str:
        with self._lock:
            self.sms.append(message)
            return f"stub-{next(self._ids)}"
