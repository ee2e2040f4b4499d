"""The provider protocol: one rendered message in, the provider's message id out.

Adapters raise `TransientProviderError` (retry later, with the provider's hint)
or `PermanentProviderError` (never retry; `suppress_reason` when the address is
bad). Every family member has the same shape: SendGrid, Twilio, the outbox
(files on disk) and the recording stub for tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class EmailMessage:
    to: str
    to_name: str | None
    from_email: str
    from_name: str | None
    subject: str
    html: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)
    custom_args: dict[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class SmsMessage:
    to: str
    sender: str
    body: str
    status_callback: str | None = None


class EmailProvider(Protocol):
    name: str

    def send_email(self, message: EmailMessage) -> str:
        """Hand one email to the provider; return its message id."""
        ...


class SmsProvider(Protocol):
    name: str

    def send_sms(self, message: SmsMessage) -> str:
        """Hand one SMS to the provider; return its message id."""
        ...
