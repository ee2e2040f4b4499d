"""The provider protocol: rendered messages in, the provider's message id out.

Email goes as a batch: one shared body and up to 1,000 recipients, each with
their own subject, headers, tracking arguments and substitutions (a single
email is a batch of one; the messages are `automation.core.messages`, and
`automation.core.batching` makes the batches).

Adapters raise `TransientProviderError` (retry later, with the provider's hint)
or `PermanentProviderError` (never retry; `suppress_reason` when the address is
bad). Every family member has the same shape: SendGrid, Twilio, the outbox
(files on disk) and the recording stub for tests.
"""

from __future__ import annotations

from typing import Protocol

from automation.core.messages import EmailBatch, SmsMessage


class EmailProvider(Protocol):
    name: str

    def send_email(self, batch: EmailBatch) -> str:
        """Hand a batch of emails to the provider in one request; return the request's message id."""
        ...


class SmsProvider(Protocol):
    name: str

    def send_sms(self, message: SmsMessage) -> str:
        """Hand one SMS to the provider; return its message id."""
        ...
