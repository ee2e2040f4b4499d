"""The provider protocol: rendered messages in, the provider's message id out.

Email goes as a batch: one shared body and up to 1,000 recipients, each with
their own subject, headers, tracking arguments and substitutions (a single
email is a batch of one; see `automation.core.batching` for how batches are made).

Before anything is marked `sending`, the judge asks the provider's `problem`
whether it can take a message at all (a provider-specific check, such as
Twilio's sender). Adapters raise `TransientProviderError` (retry later, with
the provider's hint) or `PermanentProviderError` (never retry;
`suppress_reason` when the address is bad); an error they raise before the
request leaves the process is one of these, never anything else, so that the
worker can tell "not sent" from "may have gone out". Every family member has
the same shape: SendGrid, Twilio, the outbox (files on disk) and the recording
stub for tests.
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
class Recipient:
    """One personalization: what differs from the batch's shared body for this person."""

    to: str
    to_name: str | None
    subject: str
    headers: dict[str, str] = field(default_factory=dict)
    custom_args: dict[str, str] = field(default_factory=dict)
    substitutions: dict[str, str] = field(default_factory=dict)


def substitute(body: str, substitutions: dict[str, str]) -> str:
    """Replace every key by its value, as the provider does."""
    for key, value in substitutions.items():
        body = body.replace(key, value)
    return body


@dataclass(frozen=True)
class EmailBatch:
    """One provider request: a shared body and its recipients."""

    from_email: str
    from_name: str | None
    html: str
    text: str
    categories: tuple[str, ...]
    recipients: tuple[Recipient, ...]

    @classmethod
    def single(cls, message: EmailMessage) -> EmailBatch:
        recipient = Recipient(
            message.to, message.to_name, message.subject, message.headers, message.custom_args
        )
        return cls(
            message.from_email,
            message.from_name,
            message.html,
            message.text,
            message.categories,
            (recipient,),
        )

    def expand(self) -> list[EmailMessage]:
        """Each recipient's message exactly as the provider will build it."""
        return [
            EmailMessage(
                to=r.to,
                to_name=r.to_name,
                from_email=self.from_email,
                from_name=self.from_name,
                subject=r.subject,
                html=substitute(self.html, r.substitutions),
                text=substitute(self.text, r.substitutions),
                headers=r.headers,
                custom_args=r.custom_args,
                categories=self.categories,
            )
            for r in self.recipients
        ]


@dataclass(frozen=True)
class SmsMessage:
    to: str
    sender: str
    body: str
    status_callback: str | None = None


class EmailProvider(Protocol):
    name: str

    def problem(self, message: EmailMessage) -> str | None:
        """Why this provider cannot take the message (judged before sending), None when it can."""
        ...

    def send_email(self, batch: EmailBatch) -> str:
        """Hand a batch of emails to the provider in one request; return the request's message id."""
        ...


class SmsProvider(Protocol):
    name: str

    def problem(self, message: SmsMessage) -> str | None:
        """Why this provider cannot take the message (judged before sending), None when it can."""
        ...

    def send_sms(self, message: SmsMessage) -> str:
        """Hand one SMS to the provider; return its message id."""
        ...
