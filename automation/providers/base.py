"""The provider protocol: rendered messages in, the provider's message id out.

Email goes as a batch: one shared body and up to 1,000 recipients, each with
their own subject, headers, tracking arguments and substitutions (a single
email is a batch of one; the messages are `automation.core.messages`, and
`automation.core.batching` makes the batches).

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

from typing import Protocol

from automation.core.messages import EmailBatch, EmailMessage, SmsMessage


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
