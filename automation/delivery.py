r"""Delivering one ledger row: claim, judge at the due instant, render, send, record.

The state machine that makes sends exactly-once-or-`unknown`:

    queued --claim--> claimed --judge--> sending --provider ok--> sent
                         ^   \               |--transient-----> claimed (retry later)
                         |    \              |--permanent-----> failed
                         |     `--> skipped | suppressed | deferred | failed
                         `---- rate limited, or the limiter unreachable:
                               nothing was sent, so not an attempt

    A redelivery of the claiming message resumes `claimed`; finding its own
    `sending` means it died around the provider call: `unknown`, never re-sent.
    Any other message finding the row not `queued` drops itself. Judging
    locks the row and re-checks the claim (a tick may have reclaimed a stale
    one), and locks the customer, so two journeys' messages to one person are
    judged one after the other and each sees the other in the caps.

Rules are judged at the row's `due_at`, never by the wall clock; what must
wait is written back as `deferred` with a new `due_at` for a later tick.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from automation import planner, rules, suppressions
from automation.catalog import Catalog
from automation.config import Settings
from automation.context import message_context
from automation.errors import PermanentProviderError, TransientProviderError
from automation.filters import compile_filter, describe
from automation.journeys import Journey, SendStep
from automation.models import Customer, Delivery, Enrollment
from automation.providers.base import EmailMessage, EmailProvider, SmsMessage, SmsProvider
from automation.rendering import RenderError
from automation.tokens import unsubscribe_token

COUNTED = ("sent", "sending", "unknown")


class RetryLater(Exception):
    """The provider asked us to come back; the actor turns this into `dramatiq.Retry`."""

    def __init__(self, delay_ms: int, reason: str) -> None:
        super().__init__(reason)
        self.delay_ms = delay_ms


@dataclass(frozen=True)
class Verdict:
    """What to do with a claimed delivery at its due instant."""

    status: str  # send | skipped | suppressed | deferred | failed
    reason: str | None = None
    due_at: dt.datetime | None = None


DAY = dt.timedelta(hours=24)
WEEK = dt.timedelta(days=7)


def caps(settings: Settings, channel: str) -> tuple[rules.CapRule, ...]:
    """The cross-journey frequency caps of one channel, from settings."""
    if channel == "sms":
        return (rules.CapRule(settings.sms_cap_day, DAY),)
    return (rules.CapRule(settings.email_cap_day, DAY), rules.CapRule(settings.email_cap_week, WEEK))


Throttle = Callable[[str], AbstractContextManager[bool]]


def _no_throttle(_channel: str) -> AbstractContextManager[bool]:
    return nullcontext(True)


class Deliverer:
    """Everything one delivery needs; built once per worker process."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        catalog: Catalog,
        settings: Settings,
        email: EmailProvider,
        sms: SmsProvider,
        throttle: Throttle = _no_throttle,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.sessions = session_factory
        self.catalog = catalog
        self.settings = settings
        self.email = email
        self.sms = sms
        self.throttle = throttle
        self.clock = clock  # only to stamp `sent_at`, never to decide

    # ------------------------------------------------------------ claim

    def _claim(self, delivery_id: int, message_id: str) -> str:
        """`go`, `dropped` or `unknown` for this message and this row."""
        with self.sessions.begin() as s:
            row = s.execute(
                select(Delivery.status, Delivery.message_id).where(Delivery.id == delivery_id)
            ).first()
            if row is None:
                return "dropped"
            status, owner = row
            if status == "claimed" and owner == message_id:
                return "go"
            if status == "sending" and owner == message_id:
                s.execute(
                    update(Delivery)
                    .where(Delivery.id == delivery_id, Delivery.status == "sending")
                    .values(
                        status="unknown",
                        reason="the worker stopped after handing the message to the provider; not re-sent",
                    )
                )
                return "unknown"
            if status != "queued":
                return "dropped"
            won = s.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.status == "queued")
                .values(status="claimed", message_id=message_id)
                .returning(Delivery.id)
            ).first()
            return "go" if won is not None else "dropped"

    # ------------------------------------------------------------ judge

    def _judge(
        self,
        s: Session,
        d: Delivery,
        journey: Journey,
        step: SendStep,
        customer: Customer,
        address: str | None,
    ) -> Verdict:
        enrollment_state = s.scalar(select(Enrollment.state).where(Enrollment.id == d.enrollment_id))
        if enrollment_state in ("exited", "cancelled"):
            return Verdict("skipped", f"enrollment {enrollment_state}")
        if not address:
            return Verdict("skipped", f"no {'email address' if d.channel == 'email' else 'phone number'}")
        suppressed = suppressions.reason_for(s, d.channel, address)
        if suppressed:
            return Verdict("suppressed", f"address suppressed ({suppressed})")
        if d.channel == "sms" and not customer.sms_opt_in:
            return Verdict("skipped", "consent: no sms_opt_in")
        if d.channel == "email" and not journey.transactional and not customer.email_opt_in:
            return Verdict("skipped", "consent: no email_opt_in")
        if step.if_ is not None:
            holds = s.scalar(select(Customer.id).where(Customer.id == customer.id, compile_filter(step.if_)))
            if holds is None:
                return Verdict("skipped", f"if: {describe(step.if_)} does not hold")
        tz = planner.zone(customer.timezone, self.settings.default_timezone)
        if journey.quiet_hours is not False:
            release = rules.quiet_hours_release(
                d.due_at, journey.quiet_hours.start, journey.quiet_hours.end, tz
            )
            if release is not None:
                return Verdict("deferred", "quiet hours", release)
        if journey.frequency_cap and not journey.transactional:
            channel_caps = caps(self.settings, d.channel)
            # Both sides of due_at: a message judged later may be due earlier.
            counted = s.scalars(
                select(Delivery.due_at).where(
                    Delivery.customer_id == d.customer_id,
                    Delivery.channel == d.channel,
                    Delivery.transactional.is_(False),
                    Delivery.status.in_(COUNTED),
                    Delivery.id != d.id,
                    Delivery.due_at > d.due_at - max(rule.window for rule in channel_caps),
                )
            ).all()
            release = rules.cap_release(d.due_at, counted, channel_caps)
            if release is not None:
                if journey.cap_action == "skip":
                    return Verdict("skipped", "frequency cap")
                return Verdict("deferred", "frequency cap", release)
        return Verdict("send")

    # ------------------------------------------------------------ deliver

    def deliver(self, delivery_id: int, message_id: str) -> str:
        """Run one delivery for one Dramatiq message; returns the resulting status."""
        claim = self._claim(delivery_id, message_id)
        if claim != "go":
            return claim
        with self.sessions.begin() as s:
            prepared = self._prepare(s, delivery_id, message_id)
        if isinstance(prepared, str):
            return prepared
        return self._send(delivery_id, message_id, prepared)

    def _finish(self, s: Session, delivery_id: int, owner: str, status: str, **values: Any) -> str:
        """Move the row owned by message `owner` to `status`."""
        s.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.message_id == owner)
            .values(status=status, **values)
        )
        return status

    def _prepare(self, s: Session, delivery_id: int, message_id: str) -> EmailMessage | SmsMessage | str:
        locking = s.get_bind().dialect.name == "postgresql"
        # Locked and re-checked: a tick may have reclaimed a stale claim since ours.
        d = s.get(Delivery, delivery_id, with_for_update=locking)
        if d is None or d.status != "claimed" or d.message_id != message_id:
            return "dropped"
        journey = self.catalog.get(d.journey_id)
        step = None
        if journey is not None:
            step = dict(journey.send_steps()).get(d.step_id)
        if journey is None or step is None:
            return self._finish(s, d.id, message_id, "skipped", reason="journey or step no longer exists")
        # One customer's deliveries are judged one at a time, so caps see each other.
        customer = s.get(Customer, d.customer_id, with_for_update=locking)
        if customer is None:
            return self._finish(s, d.id, message_id, "skipped", reason="customer not found")
        address = customer.email if d.channel == "email" else customer.phone
        verdict = self._judge(s, d, journey, step, customer, address)
        if verdict.status == "deferred":
            return self._finish(
                s,
                d.id,
                message_id,
                "deferred",
                reason=verdict.reason,
                due_at=verdict.due_at,
                message_id=None,
            )
        if verdict.status != "send":
            return self._finish(s, d.id, message_id, verdict.status, reason=verdict.reason)
        assert address is not None
        enrollment = s.get(Enrollment, d.enrollment_id)
        ctx = message_context(
            journey,
            customer,
            enrollment.context if enrollment else {},
            delivery_id=d.id,
            unsubscribe_url=self.unsubscribe_url(d.id),
            brand=self.settings.email_from_name,
        )
        try:
            message, segments = self._render(d, journey, step, ctx, address, customer)
        except RenderError as exc:
            return self._finish(s, d.id, message_id, "failed", reason=f"render: {exc}")
        if segments is not None and journey.max_sms_segments and segments > journey.max_sms_segments:
            return self._finish(
                s,
                d.id,
                message_id,
                "failed",
                reason=f"SMS is {segments} segments, over the maximum {journey.max_sms_segments}",
                segments=segments,
            )
        self._finish(
            s,
            d.id,
            message_id,
            "sending",
            address=address,
            segments=segments,
            attempts=d.attempts + 1,
            provider=(self.email if d.channel == "email" else self.sms).name,
        )
        return message

    def unsubscribe_url(self, delivery_id: int) -> str:
        token = unsubscribe_token(delivery_id, self.settings.unsubscribe_secret.get_secret_value())
        return f"{self.settings.public_url.rstrip('/')}/unsubscribe/{token}"

    def _render(
        self,
        d: Delivery,
        journey: Journey,
        step: SendStep,
        ctx: dict[str, Any],
        address: str,
        customer: Customer,
    ) -> tuple[EmailMessage | SmsMessage, int | None]:
        """The provider-ready message, and its SMS segment count."""
        renderer = self.catalog.renderer
        if d.channel == "sms":
            rendered = renderer.render_sms(step.template, ctx)
            if not self.settings.sms_from and self.sms.name == "twilio":
                raise RenderError("AUTOMATION_SMS_FROM is not set")
            sender = self.settings.sms_from or "outbox"
            callback = f"{self.settings.public_url.rstrip('/')}/webhooks/twilio/status?delivery_id={d.id}"
            sms = SmsMessage(to=address, sender=sender, body=rendered.body, status_callback=callback)
            return sms, rendered.segments
        email = renderer.render_email(step.template, ctx)
        headers = {}
        if not journey.transactional:
            url = self.unsubscribe_url(d.id)
            headers = {
                "List-Unsubscribe": f"<{url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
        name = " ".join(p for p in (customer.first_name, customer.last_name) if p) or None
        message = EmailMessage(
            to=address,
            to_name=name,
            from_email=self.settings.email_from,
            from_name=self.settings.email_from_name,
            subject=email.subject,
            html=email.html,
            text=email.text,
            headers=headers,
            custom_args={"delivery_id": str(d.id), "journey_id": d.journey_id},
            categories=(d.journey_id,),
        )
        return message, None

    def _not_sent(self, delivery_id: int, message_id: str, reason: str) -> RetryLater:
        """Nothing reached the provider: back to `claimed`, not counted as an attempt."""
        with self.sessions.begin() as s:
            self._finish(s, delivery_id, message_id, "claimed", reason=reason, attempts=Delivery.attempts - 1)
        return RetryLater(random.randint(100, 400), reason)

    def _send(self, delivery_id: int, message_id: str, message: EmailMessage | SmsMessage) -> str:
        channel = "email" if isinstance(message, EmailMessage) else "sms"
        with ExitStack() as gate:
            try:
                allowed = gate.enter_context(self.throttle(channel))
            except Exception as exc:
                # The limiter's Redis is away (a restart): wait, rather than leave a
                # `sending` row that a redelivery would wrongly call `unknown`.
                raise self._not_sent(delivery_id, message_id, "rate limiter unavailable") from exc
            if not allowed:
                raise self._not_sent(delivery_id, message_id, "rate limited")
            try:
                if isinstance(message, EmailMessage):
                    provider_id = self.email.send_email(message)
                else:
                    provider_id = self.sms.send_sms(message)
            except TransientProviderError as exc:
                return self._transient(delivery_id, message_id, exc)
            except PermanentProviderError as exc:
                with self.sessions.begin() as s:
                    if exc.suppress_reason:
                        self._suppress(s, channel, message.to, exc.suppress_reason, self.clock())
                    return self._finish(s, delivery_id, message_id, "failed", reason=str(exc)[:500])
        with self.sessions.begin() as s:
            s.execute(
                update(Delivery)
                .where(
                    Delivery.id == delivery_id,
                    Delivery.message_id == message_id,
                    Delivery.status.in_(("sending", "unknown")),
                )
                .values(
                    status="sent",
                    reason=None,
                    provider_message_id=provider_id,
                    sent_at=self.clock(),
                )
            )
        return "sent"

    def _transient(self, delivery_id: int, message_id: str, exc: TransientProviderError) -> str:
        with self.sessions.begin() as s:
            attempts = s.scalar(select(Delivery.attempts).where(Delivery.id == delivery_id)) or 0
            if attempts >= self.settings.max_attempts:
                return self._finish(
                    s,
                    delivery_id,
                    message_id,
                    "failed",
                    reason=f"gave up after {attempts} attempts: {exc}"[:500],
                )
            self._finish(s, delivery_id, message_id, "claimed", reason=f"retrying: {exc}"[:500])
        delay = rules.retry_delay_ms(
            attempts,
            exc.retry_after_s,
            self.settings.retry_min_backoff_ms,
            self.settings.retry_max_backoff_ms,
            random.random(),
        )
        raise RetryLater(delay, str(exc))

    @staticmethod
    def _suppress(s: Session, channel: str, address: str, reason: str, at: dt.datetime) -> None:
        try:
            key = suppressions.normalize(channel, address)
        except suppressions.AddressError:
            key = address
        suppressions.add(s, [suppressions.Entry(channel, key, reason)], "provider", at)
