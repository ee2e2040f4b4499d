"""One real test message: `automation journeys test JOURNEY --customer ID --to ADDRESS`.

The step is rendered exactly as `journeys preview` renders it for that customer,
then sent through the configured provider to the operator's own address, marked
`[TEST]` in its subject (or at the start of an SMS). It is recorded in
`test_sends`, never in the delivery ledger, so no report, cap or conversion
counts it; its unsubscribe link names no delivery and does nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from automation.config import Settings
from automation.core import addresses
from automation.core.journeys import Journey
from automation.core.messages import EmailBatch, EmailMessage, SmsMessage
from automation.core.suggest import unknown
from automation.definitions.catalog import Catalog
from automation.definitions.rendering import RenderedEmail
from automation.errors import ProviderError, UserError
from automation.insight.explain import PreviewedStep, preview
from automation.providers.base import EmailProvider, SmsProvider
from automation.store.models import TestSend

MARK = "[TEST]"


@dataclass(frozen=True)
class SentTest:
    id: int
    step: PreviewedStep
    address: str
    provider: str
    provider_message_id: str


def _step(journey: Journey, step_id: str | None) -> str:
    """The id of the send step `step_id` (default: the first send)."""
    sends = journey.send_steps()
    if not sends:
        raise UserError(f"journey {journey.id!r} has no send step")
    if step_id is None:
        return sends[0][0]
    if step_id not in journey.placed:
        raise UserError(unknown("step", step_id, journey.step_ids()))
    return step_id


def _address(channel: str, to: str) -> str:
    try:
        return addresses.normalize(channel, to)
    except addresses.AddressError as exc:
        raise UserError(f"--to: {exc}") from None


def send_test(
    sessions: sessionmaker[Session],
    catalog: Catalog,
    settings: Settings,
    journey: Journey,
    customer_id: str,
    to: str,
    now: dt.datetime,
    *,
    step_id: str | None,
    sent_by: str,
    email: EmailProvider,
    sms: SmsProvider,
) -> SentTest:
    """Render one step for the customer, send it to `to` marked as a test, and record it apart."""
    send = _step(journey, step_id)
    with sessions() as s:
        (step,) = preview(
            s,
            journey,
            catalog,
            customer_id,
            now,
            settings,
            step=send,
        )
    channel = step.step.channel
    address = _address(channel, to)
    try:
        if isinstance(step.message, RenderedEmail):
            provider_name = email.name
            message = EmailMessage(
                to=address,
                to_name=None,
                from_email=settings.email_from,
                from_name=settings.email_from_name,
                subject=f"{MARK} {step.message.subject}",
                html=step.message.html,
                text=step.message.text,
                custom_args={"journey_id": journey.id, "test_send": "1"},
                categories=(journey.id, "test"),
            )
            provider_id = email.send_email(EmailBatch.single(message))
        else:
            provider_name = sms.name
            text = SmsMessage(to=address, sender=settings.sms_from or "", body=f"{MARK} {step.message.body}")
            problem = sms.problem(text)
            if problem:
                raise UserError(f"{problem}: {sms.name} cannot take the test message")
            provider_id = sms.send_sms(text)
    except ProviderError as exc:
        raise UserError(f"the provider did not take the test message: {exc}") from None
    row = TestSend(
        journey_id=journey.id,
        step_id=step.step_id,
        customer_id=customer_id,
        channel=channel,
        address=address,
        provider=provider_name,
        provider_message_id=provider_id[:128],
        sent_by=sent_by[:128],
        sent_at=now,
    )
    with sessions.begin() as s:
        s.add(row)
    return SentTest(row.id, step, address, provider_name, provider_id)
