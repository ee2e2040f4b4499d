"""Building one delivery's provider-ready message from its row, its person and its template.

No database, no provider call: the templates come through the renderer's cache,
and the provider only says whether it can take the message. Whatever goes wrong
on one customer's data is that message's alone: the result is `Unbuildable`,
with a reason that names the template line, never the data.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from automation.core import batching, judging
from automation.core.context import message_context
from automation.core.journeys import Journey, SendStep
from automation.core.messages import EmailMessage, SmsMessage
from automation.definitions.rendering import Renderer, RenderError
from automation.enroll.kinds import template_variables


@dataclass(frozen=True)
class Email:
    """An email and the strings of it that came from the recipient's own context (for batching)."""

    message: EmailMessage
    personal: dict[str, str]


Outgoing = Email | SmsMessage
Composition = judging.Composed[Outgoing] | judging.Unbuildable


#: The provider's word on a message before anything is marked `sending`: why it cannot take it.
Checks = Callable[[EmailMessage | SmsMessage], str | None]


#: Context parts that are the same in every message (the journey, the settings' brand and shop):
#: left in the shared body, never cut out as a recipient's own strings.
SHARED = ("journey", "brand", "shop")


@dataclass(frozen=True)
class Sender:
    """Who the messages come from and where their links point: the same for every delivery."""

    public_url: str
    email_from: str
    email_from_name: str
    sms_from: str | None
    shop: dict[str, Any] | None = None  # brand, shop URL, postal address, currency (templates' `shop`)


@dataclass(frozen=True)
class Parts:
    """What one delivery's message is made of."""

    delivery_id: int
    journey: Journey
    step: SendStep
    template: str  # the delivery's own: a step with variants has several
    customer: Any
    enrollment_context: dict[str, Any]
    address: str
    unsubscribe_url: str
    confirm_url: str
    loyalty: dict[str, Any] | None = None
    coupon: dict[str, Any] | None = None


def _control_character(*values: str | None) -> bool:
    """Whether a header-bound value holds a control character (CR/LF would split the header)."""
    return any(unicodedata.category(ch) == "Cc" for value in values if value for ch in value)


def compose(parts: Parts, renderer: Renderer, sender: Sender, checks: Checks) -> Composition:
    """The message for one delivery, or why it cannot be built."""
    try:
        built = _build(parts, renderer, sender)
    except RenderError as exc:
        return judging.Unbuildable(f"render: {exc}")
    except Exception as exc:  # one customer's data must not fail the others'
        return judging.Unbuildable(f"compose: {type(exc).__name__} while building the message")
    if isinstance(built, judging.Unbuildable):
        return built
    message, segments = built
    problem = checks(message.message if isinstance(message, Email) else message)
    return judging.Composed(message, segments, problem)


def _build(
    parts: Parts, renderer: Renderer, sender: Sender
) -> tuple[Outgoing, int | None] | judging.Unbuildable:
    journey, step, customer = parts.journey, parts.step, parts.customer
    ctx = message_context(
        journey,
        customer,
        template_variables(journey, parts.enrollment_context),
        delivery_id=parts.delivery_id,
        unsubscribe_url=parts.unsubscribe_url,
        confirm_url=parts.confirm_url,
        brand=sender.email_from_name,
        shop=sender.shop,
        loyalty=parts.loyalty,
        coupon=parts.coupon,
    )
    if step.channel == "sms":
        rendered = renderer.render_sms(parts.template, ctx)
        callback = f"{sender.public_url.rstrip('/')}/webhooks/twilio/status?delivery_id={parts.delivery_id}"
        sms = SmsMessage(
            to=parts.address, sender=sender.sms_from or "", body=rendered.body, status_callback=callback
        )
        return sms, rendered.segments
    email = renderer.render_email(parts.template, ctx)
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p) or None
    if _control_character(parts.address, name, email.subject):
        return judging.Unbuildable("compose: a control character in the recipient's address or name")
    headers = {}
    if not journey.transactional:
        headers = {
            "List-Unsubscribe": f"<{parts.unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    message = EmailMessage(
        to=parts.address,
        to_name=name,
        from_email=sender.email_from,
        from_name=sender.email_from_name,
        subject=email.subject,
        html=email.html,
        text=email.text,
        headers=headers,
        custom_args={"delivery_id": str(parts.delivery_id), "journey_id": journey.id},
        categories=(journey.id,),
    )
    return Email(message, batching.personal_values(ctx, SHARED)), None
