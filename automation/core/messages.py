"""The messages handed to a provider: an email batch (a shared body, a personalization per
recipient), a single email, an SMS. Pure values: `core.batching` builds batches from them,
the providers (`automation.providers`) send them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
