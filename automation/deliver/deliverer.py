r"""Delivering the ledger rows of one Dramatiq message: claim, judge at the due instant, render, send, record.

A message carries one delivery id (`deliver`) or up to a batch of them
(`deliver_batch`, email deliveries of one journey step). Each row follows the
state machine that makes sends exactly-once-or-`unknown`:

    queued --claim--> claimed --judge--> sending --provider ok--> sent
                         ^   \               |--transient-----> claimed (retry later)
                         |    \              |--permanent-----> failed
                         |     `--> skipped | suppressed | deferred | failed
                         `---- rate limited, or the limiter unreachable:
                               nothing was sent, so not an attempt

    A redelivery of the claiming message resumes its `claimed` rows; finding
    its own `sending` row means it died around the provider call: `unknown`,
    never re-sent. Any other message finding a row not `queued` drops it.

Claiming, judging, rendering and marking `sending` happen in one transaction
with a fixed number of set-based queries, whatever the batch size; the people
concerned are locked in id order, so two journeys' messages to one person are
judged one after the other and each sees the other in the caps. Emails that can
share a body go to the provider as one batch request (`automation.core.batching`).
Rules are judged at the row's `due_at`, never by the wall clock; what must
wait is written back as `deferred` with a new `due_at` for a later tick.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import BindParameter, Table, bindparam, case, select, update
from sqlalchemy.orm import Session, defer, load_only, sessionmaker

from automation.advance.batch import settle
from automation.config import Settings
from automation.core import batching, judging, planner, rules
from automation.core.context import message_context
from automation.core.journeys import Journey, SendStep
from automation.core.messages import EmailBatch, EmailMessage, SmsMessage
from automation.core.statuses import Channel, DeliveryStatus, EnrollmentState
from automation.core.tokens import unsubscribe_token
from automation.definitions.catalog import Absent, LiveCatalog
from automation.definitions.rendering import RenderError
from automation.enroll.kinds import kind_of, template_variables
from automation.errors import PermanentProviderError, TransientProviderError
from automation.providers.base import EmailProvider, SmsProvider
from automation.store import deferrals as deferral_log
from automation.store import suppressions
from automation.store import topics as topic_choices
from automation.store.filter_sql import compile_filter
from automation.store.models import Customer, Delivery, Enrollment, Suppression

COUNTED = (DeliveryStatus.SENT, DeliveryStatus.SENDING, DeliveryStatus.UNKNOWN)
# Still to go: rivals for a contested cap slot.
TO_GO = (DeliveryStatus.QUEUED, DeliveryStatus.CLAIMED, DeliveryStatus.DEFERRED)
# A row whose journey this worker's folder does not have yet is tried again after this long.
CATALOG_BEHIND_RETRY_MS = 15_000
log = logging.getLogger("automation.deliver")
DIED_SENDING = "the worker stopped after handing the message to the provider; not re-sent"

# The hot path's statements, built once (Core on the table: no ORM bookkeeping per message).
_TABLE = cast(Table, Delivery.__table__)
_T = _TABLE.c
_IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)
_CLAIM = (
    update(_TABLE)
    .where(_T.id.in_(_IDS), _T.status == DeliveryStatus.QUEUED)
    .values(status=DeliveryStatus.CLAIMED, message_id=bindparam("owner"))
    .returning(_T.id)
)
_MINE = select(_T.id, _T.status, _T.message_id).where(_T.id.in_(_IDS)).order_by(_T.id)
_ROW = update(_TABLE).where(_T.id == bindparam("b_id"))
_SUPPRESSED = (
    select(Suppression.reason)
    .where(
        Suppression.channel == Delivery.channel,
        suppressions.matches(case((Delivery.channel == Channel.EMAIL, Customer.email), else_=Customer.phone)),
    )
    .limit(1)
    .scalar_subquery()
)
# Ingest keeps addresses in the suppression list's normal form, so the lookup is an equality
# (with the address's hash too: an erased customer's suppressions are kept hashed).
_LOAD = (
    select(Delivery, Enrollment.state, Enrollment.context, Customer, _SUPPRESSED)
    .options(
        load_only(
            Delivery.id,
            Delivery.journey_id,
            Delivery.step_id,
            Delivery.channel,
            Delivery.due_at,
            Delivery.first_due_at,
            Delivery.enqueued_at,
            Delivery.attempts,
            Delivery.customer_id,
        ),
        defer(Customer.trait_times),
    )
    .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
    .join(Customer, Customer.id == Delivery.customer_id)
    .where(Delivery.id.in_(_IDS))
    .order_by(Delivery.customer_id, Delivery.id)
)
_LOAD_LOCKED = _LOAD.with_for_update(of=Customer)


class RetryLater(Exception):
    """The provider asked us to come back; the actor turns this into `dramatiq.Retry`."""

    def __init__(self, delay_ms: int, reason: str) -> None:
        super().__init__(reason)
        self.delay_ms = delay_ms


Throttle = Callable[[str], AbstractContextManager[bool]]


def _no_throttle(_channel: str) -> AbstractContextManager[bool]:
    return nullcontext(True)


@dataclass(frozen=True)
class _Claimed:
    """A claimed row with what judging and rendering need."""

    delivery: Delivery
    journey: Journey
    step: SendStep
    customer: Customer
    enrollment_state: EnrollmentState
    enrollment_context: dict[str, Any]
    suppressed: str | None


@dataclass(frozen=True)
class _Unit:
    """One provider request: an email batch or one SMS, and the rows it carries (in recipient order)."""

    ids: tuple[int, ...]
    payload: EmailBatch | SmsMessage
    labels: tuple[tuple[str, str], ...] = ()  # each row's (journey, step), for the outcome log

    @property
    def channel(self) -> str:
        return Channel.EMAIL if isinstance(self.payload, EmailBatch) else Channel.SMS

    @property
    def addresses(self) -> tuple[str, ...]:
        if isinstance(self.payload, EmailBatch):
            return tuple(r.to for r in self.payload.recipients)
        return (self.payload.to,)


def _log_outcome(delivery_id: int, label: tuple[str, str], status: str, reason: str | None) -> None:
    """One line per outcome: ids, status and reason only, never an address or a name.

    A row handed back to be tried again (`claimed`: rate limited, retrying) is not an outcome: debug only.
    """
    journey, step = label
    level = logging.DEBUG if status == DeliveryStatus.CLAIMED else logging.INFO
    log.log(
        level,
        "delivery %d journey=%s step=%s status=%s reason=%s",
        delivery_id,
        journey,
        step,
        status,
        reason,
    )


UNLABELLED = ("-", "-")


def _later(retry: RetryLater | None, other: RetryLater) -> RetryLater:
    """Of two retries, the one that waits longer."""
    return other if retry is None or other.delay_ms > retry.delay_ms else retry


class Deliverer:
    """Everything a delivery needs; built once per worker process."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        catalogs: LiveCatalog,
        settings: Settings,
        email: EmailProvider,
        sms: SmsProvider,
        throttle: Throttle = _no_throttle,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.sessions = session_factory
        self.catalogs = catalogs
        self.settings = settings
        self.email = email
        self.sms = sms
        self.throttle = throttle
        self.clock = clock  # only to stamp `sent_at`, never to decide

    # ------------------------------------------------------------ entry points

    def deliver(self, delivery_id: int, message_id: str) -> str:
        """Run one delivery for one Dramatiq message; returns the resulting status."""
        return self.deliver_many([delivery_id], message_id)[delivery_id]

    def deliver_many(self, ids: Sequence[int], message_id: str) -> dict[int, str]:
        """Run the deliveries of one Dramatiq message; returns each row's resulting status.

        Raises:
          RetryLater: some rows must be tried again later (the others are recorded).
        """
        outcome: dict[int, str] = {}
        with self.sessions.begin() as s:
            units = self._prepare(s, list(dict.fromkeys(ids)), message_id, outcome)
        retry: RetryLater | None = None
        if DeliveryStatus.CLAIMED in outcome.values():
            retry = RetryLater(CATALOG_BEHIND_RETRY_MS, "waiting for the newest journey catalog")
        for unit in units:
            try:
                self._send(unit, message_id, outcome)
            except RetryLater as exc:
                retry = _later(retry, exc)
        with self.sessions.begin() as s:
            settle(s, ids)
        if retry is not None:
            raise retry
        return outcome

    # ------------------------------------------------------------ claim

    def _claim(self, s: Session, ids: list[int], message_id: str, outcome: dict[int, str]) -> list[int]:
        """The ids this message may work on: newly claimed, or claimed by it before."""
        go = set(s.scalars(_CLAIM, {"ids": ids, "owner": message_id}))
        rest = [i for i in ids if i not in go]
        if rest:
            # Locked: a tick may be reclaiming a stale claim of ours right now.
            found = s.execute(_MINE.with_for_update(), {"ids": rest}).all()
            died = []
            for did, status, owner in found:
                if owner == message_id and status == DeliveryStatus.CLAIMED:
                    go.add(did)
                elif owner == message_id and status == DeliveryStatus.SENDING:
                    died.append(did)
                    outcome[did] = DeliveryStatus.UNKNOWN
            for did in died:
                _log_outcome(did, UNLABELLED, DeliveryStatus.UNKNOWN, DIED_SENDING)
            if died:
                s.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(died), Delivery.status == DeliveryStatus.SENDING)
                    .values(status=DeliveryStatus.UNKNOWN, reason=DIED_SENDING)
                )
        for i in ids:
            if i not in go:
                outcome.setdefault(i, "dropped")
        return sorted(go)

    def _load(self, s: Session, ids: list[int], outcome: dict[int, str]) -> list[_Claimed]:
        """The claimed rows with journey, step, enrollment, suppression and (locked, in id order) person."""
        stmt = _LOAD_LOCKED if s.get_bind().dialect.name == "postgresql" else _LOAD
        claimed: list[_Claimed] = []
        gone: list[tuple[int, str]] = []
        behind: list[int] = []
        for d, state, context, customer, reason in s.execute(stmt, {"ids": ids}):
            found = self.catalogs.find(d.journey_id, d.step_id)
            if found is Absent.GONE:
                gone.append((d.id, "journey or step no longer exists"))
            elif found is Absent.BEHIND:
                behind.append(d.id)
                outcome[d.id] = DeliveryStatus.CLAIMED
            else:
                journey, step = found
                claimed.append(_Claimed(d, journey, step, customer, state, context or {}, reason))
        if behind:
            log.warning(
                "%d deliveries wait for a newer journey catalog than %s (retried later)",
                len(behind),
                self.catalogs.current.version,
            )
        seen = {c.delivery.id for c in claimed} | {i for i, _ in gone} | set(behind)
        gone.extend((i, "customer not found") for i in ids if i not in seen)
        for did, reason in gone:
            outcome[did] = self._finish(s, did, DeliveryStatus.SKIPPED, reason=reason)
            _log_outcome(did, UNLABELLED, DeliveryStatus.SKIPPED, reason)
        return claimed

    # ------------------------------------------------------------ judge

    def _facts(self, s: Session, rows: list[_Claimed]) -> dict[int, judging.Facts]:
        """Every row's facts from one query per kind of fact."""
        holds = self._if_holds(s, rows)
        counted = self._counted(s, rows)
        rivals = self._rivals(s, rows)
        choices = topic_choices.of(s, {c.delivery.customer_id for c in rows if c.journey.topic_id})
        catalog = self.catalogs.current
        default_tz = self.settings.default_timezone
        facts = {}
        for c in rows:
            d = c.delivery
            topic = c.journey.topic_id
            consent = (
                bool(c.customer.sms_opt_in)
                if d.channel == Channel.SMS
                else bool(c.journey.transactional or c.customer.email_opt_in)
            )
            facts[d.id] = judging.Facts(
                enrollment_state=c.enrollment_state,
                address=c.customer.email if d.channel == Channel.EMAIL else c.customer.phone,
                suppressed=c.suppressed,
                consent=consent,
                if_holds=(d.journey_id, d.step_id, d.customer_id) in holds,
                timezone=planner.zone(c.customer.timezone, default_tz),
                counted=counted.get((d.customer_id, d.channel), []),
                first_due_at=d.first_due_at,
                queued_at=d.enqueued_at,
                occasion_day=_occasion_day(c),
                ahead=[
                    due
                    for priority, due, rid in rivals.get((d.customer_id, d.channel), [])
                    if judging.outranks(c.journey.priority, d.due_at, d.id, (priority, due, rid))
                ],
                in_topic=topic is None
                or judging.in_topic(
                    c.journey,
                    d.channel,
                    catalog.topics.get(topic),
                    choices.get(d.customer_id, {}).get(topic),
                    catalog.double_opt_in(topic),
                ),
            )
        return facts

    def _rivals(
        self, s: Session, rows: list[_Claimed]
    ) -> dict[tuple[str, str], list[tuple[int, dt.datetime, int]]]:
        """Each person's other capped messages still to go, as (priority, due, id), around this batch's."""
        capped = [c for c in rows if c.journey.frequency_cap and not c.journey.transactional]
        if not capped:
            return {}
        windows = [judging.max_window(self._caps(c.delivery.channel)) for c in capped]
        since = min(c.delivery.due_at - w for c, w in zip(capped, windows, strict=True))
        until = max(c.delivery.due_at + w for c, w in zip(capped, windows, strict=True))
        found = s.execute(
            select(
                Delivery.id, Delivery.customer_id, Delivery.channel, Delivery.due_at, Delivery.journey_id
            ).where(
                Delivery.customer_id.in_({c.delivery.customer_id for c in capped}),
                Delivery.channel.in_({c.delivery.channel for c in capped}),
                Delivery.transactional.is_(False),
                Delivery.status.in_(TO_GO),
                Delivery.due_at > since,
                Delivery.due_at < until,
                Delivery.id.not_in([c.delivery.id for c in rows]),
            )
        )
        catalog = self.catalogs.current
        rivals: dict[tuple[str, str], list[tuple[int, dt.datetime, int]]] = {}
        for rid, cid, channel, due_at, jid in found:
            journey = catalog.get(jid)
            if journey is not None and journey.frequency_cap:
                rivals.setdefault((cid, channel), []).append((journey.priority, due_at, rid))
        return rivals

    @staticmethod
    def _if_holds(s: Session, rows: list[_Claimed]) -> set[tuple[str, str, str]]:
        """(journey, step, customer) for which the step's `if` holds now."""
        by_step: dict[tuple[str, str], tuple[SendStep, set[str]]] = {}
        for c in rows:
            if c.step.if_ is not None:
                key = (c.delivery.journey_id, c.delivery.step_id)
                by_step.setdefault(key, (c.step, set()))[1].add(c.delivery.customer_id)
        holds: set[tuple[str, str, str]] = set()
        for (jid, sid), (step, customers) in by_step.items():
            assert step.if_ is not None
            ok = s.scalars(select(Customer.id).where(Customer.id.in_(customers), compile_filter(step.if_)))
            holds.update((jid, sid, cid) for cid in ok)
        return holds

    def _caps(self, channel: Channel) -> tuple[rules.CapRule, ...]:
        st = self.settings
        return judging.caps(channel, st.email_cap_day, st.email_cap_week, st.sms_cap_day)

    def _counted(self, s: Session, rows: list[_Claimed]) -> dict[tuple[str, str], list[dt.datetime]]:
        """Due instants of each person's counted messages per channel, around this batch's."""
        capped = [c for c in rows if c.journey.frequency_cap and not c.journey.transactional]
        if not capped:
            return {}
        since = min(c.delivery.due_at - judging.max_window(self._caps(c.delivery.channel)) for c in capped)
        found = s.execute(
            select(Delivery.customer_id, Delivery.channel, Delivery.due_at).where(
                Delivery.customer_id.in_({c.delivery.customer_id for c in capped}),
                Delivery.channel.in_({c.delivery.channel for c in capped}),
                Delivery.transactional.is_(False),
                Delivery.status.in_(COUNTED),
                Delivery.due_at > since,
            )
        )
        counted: dict[tuple[str, str], list[dt.datetime]] = {}
        for cid, channel, due_at in found:
            counted.setdefault((cid, channel), []).append(due_at)
        return counted

    # ------------------------------------------------------------ prepare

    def _prepare(self, s: Session, ids: list[int], message_id: str, outcome: dict[int, str]) -> list[_Unit]:
        """Claim, judge and render in one transaction; rows to send are left `sending`."""
        go = self._claim(s, ids, message_id, outcome)
        if not go:
            return []
        rows = self._load(s, go, outcome)
        facts = self._facts(s, rows)
        finals: list[dict[str, Any]] = []
        deferred: list[dict[str, Any]] = []
        deferrals: list[dict[str, Any]] = []
        sending: list[dict[str, Any]] = []
        emails: list[tuple[int, EmailMessage, dict[str, str]]] = []
        units: list[_Unit] = []
        labels: dict[int, tuple[str, str]] = {}
        # Rows of this batch already bound for a person count in the caps of the person's later rows.
        bound: dict[tuple[str, str], list[dt.datetime]] = {}
        for c in rows:
            d = c.delivery
            person = (d.customer_id, d.channel)
            f = facts[d.id]
            if person in bound:
                f = replace(f, counted=[*f.counted, *bound[person]])
            verdict = judging.judge(d.channel, d.due_at, c.journey, c.step, f, self._caps(d.channel))
            if verdict.status is DeliveryStatus.SENDING:
                rendered = self._render(c, facts[d.id].address or "")
                if isinstance(rendered, str):
                    verdict = judging.Verdict(DeliveryStatus.FAILED, rendered)
            outcome[d.id] = verdict.status
            if verdict.status is not DeliveryStatus.SENDING:
                _log_outcome(d.id, (d.journey_id, d.step_id), verdict.status, verdict.reason)
            if verdict.status == DeliveryStatus.DEFERRED:
                deferred.append(
                    {
                        "b_id": d.id,
                        "status": DeliveryStatus.DEFERRED,
                        "reason": verdict.reason,
                        "due_at": verdict.due_at,
                        "message_id": None,
                    }
                )
                deferrals.append(
                    {
                        "delivery_id": d.id,
                        "judged_at": d.due_at,
                        "until": verdict.due_at,
                        "reason": verdict.reason,
                    }
                )
                continue
            if verdict.status is not DeliveryStatus.SENDING:
                finals.append({"b_id": d.id, "status": verdict.status, "reason": verdict.reason})
                continue
            assert not isinstance(rendered, str)
            message, segments, values = rendered
            outcome[d.id] = DeliveryStatus.SENDING
            bound.setdefault(person, []).append(d.due_at)
            sending.append(
                {
                    "b_id": d.id,
                    "status": DeliveryStatus.SENDING,
                    "address": message.to,
                    "segments": segments,
                    "attempts": d.attempts + 1,
                    "provider": (self.email if d.channel == Channel.EMAIL else self.sms).name,
                }
            )
            labels[d.id] = (d.journey_id, d.step_id)
            if isinstance(message, EmailMessage):
                emails.append((d.id, message, values))
            else:
                units.append(_Unit((d.id,), message, (labels[d.id],)))
        for rows_of_a_kind in (finals, sending, deferred):
            _update_rows(s, rows_of_a_kind)
        deferral_log.record(s, deferrals)
        for grouped in batching.group(emails, self.settings.email_batch_size):
            units.append(_Unit(grouped.keys, grouped.batch, tuple(labels[i] for i in grouped.keys)))
        return units

    def link(self, route: str, delivery_id: int) -> str:
        """A signed per-delivery link: `unsubscribe` (the preference centre) or `confirm` (double opt-in)."""
        token = unsubscribe_token(delivery_id, self.settings.unsubscribe_secret.get_secret_value())
        return f"{self.settings.public_url.rstrip('/')}/{route}/{token}"

    def _render(
        self, c: _Claimed, address: str
    ) -> tuple[EmailMessage | SmsMessage, int | None, dict[str, str]] | str:
        """The provider-ready message, its SMS segments and its personal strings; or why it failed."""
        d, journey, step = c.delivery, c.journey, c.step
        unsubscribe = self.link("unsubscribe", d.id)
        ctx = message_context(
            journey,
            c.customer,
            template_variables(journey, c.enrollment_context),
            delivery_id=d.id,
            unsubscribe_url=unsubscribe,
            confirm_url=self.link("confirm", d.id),
            brand=self.settings.email_from_name,
        )
        renderer = self.catalogs.current.renderer
        try:
            if d.channel == Channel.SMS:
                rendered = renderer.render_sms(step.template, ctx)
                if not self.settings.sms_from and self.sms.name == "twilio":
                    return "render: AUTOMATION_SMS_FROM is not set"
                if journey.max_sms_segments and rendered.segments > journey.max_sms_segments:
                    return f"SMS is {rendered.segments} segments, over the maximum {journey.max_sms_segments}"
                callback = f"{self.settings.public_url.rstrip('/')}/webhooks/twilio/status?delivery_id={d.id}"
                sms = SmsMessage(
                    to=address,
                    sender=self.settings.sms_from or "outbox",
                    body=rendered.body,
                    status_callback=callback,
                )
                return sms, rendered.segments, {}
            email = renderer.render_email(step.template, ctx)
        except RenderError as exc:
            return f"render: {exc}"
        headers = {}
        if not journey.transactional:
            headers = {
                "List-Unsubscribe": f"<{unsubscribe}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
        name = " ".join(p for p in (c.customer.first_name, c.customer.last_name) if p) or None
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
        return message, None, batching.personal_values(ctx)

    # ------------------------------------------------------------ send and record

    def _finish(self, s: Session, delivery_id: int, status: str, **values: Any) -> str:
        s.execute(_ROW.values(status=status, **values), {"b_id": delivery_id})
        return status

    def _mark(
        self, unit: _Unit, owner: str, status: DeliveryStatus, outcome: dict[int, str], **values: Any
    ) -> None:
        """Move this message's rows to `status` in one statement."""
        with self.sessions.begin() as s:
            s.execute(
                update(_TABLE)
                .where(_T.id.in_(unit.ids), _T.message_id == owner)
                .values(status=status, **values)
            )
        outcome.update(dict.fromkeys(unit.ids, status))
        for did, label in zip(unit.ids, unit.labels or (UNLABELLED,) * len(unit.ids), strict=True):
            _log_outcome(did, label, status, values.get("reason"))

    def _not_sent(self, unit: _Unit, owner: str, reason: str, outcome: dict[int, str]) -> RetryLater:
        """Nothing reached the provider: back to `claimed`, not counted as an attempt."""
        self._mark(
            unit, owner, DeliveryStatus.CLAIMED, outcome, reason=reason, attempts=Delivery.attempts - 1
        )
        return RetryLater(random.randint(100, 400), reason)

    def _send(self, unit: _Unit, owner: str, outcome: dict[int, str]) -> None:
        with ExitStack() as gate:
            try:
                allowed = gate.enter_context(self.throttle(unit.channel))
            except Exception as exc:
                # The limiter's Redis is away (a restart): wait, rather than leave a
                # `sending` row that a redelivery would wrongly call `unknown`.
                raise self._not_sent(unit, owner, "rate limiter unavailable", outcome) from exc
            if not allowed:
                raise self._not_sent(unit, owner, "rate limited", outcome)
            try:
                if isinstance(unit.payload, EmailBatch):
                    provider_id = self.email.send_email(unit.payload)
                else:
                    provider_id = self.sms.send_sms(unit.payload)
            except TransientProviderError as exc:
                self._transient(unit, owner, exc, outcome)
                return
            except PermanentProviderError as exc:
                self._permanent(unit, owner, exc, outcome)
                return
        self._mark(
            unit,
            owner,
            DeliveryStatus.SENT,
            outcome,
            reason=None,
            provider_message_id=provider_id,
            sent_at=self.clock(),
        )

    def _permanent(
        self, unit: _Unit, owner: str, exc: PermanentProviderError, outcome: dict[int, str]
    ) -> None:
        """A refused batch is tried one by one when the refusal names a recipient; else all fail."""
        if isinstance(unit.payload, EmailBatch) and len(unit.ids) > 1 and exc.about_recipient:
            retry: RetryLater | None = None
            labels = unit.labels or (UNLABELLED,) * len(unit.ids)
            for did, recipient, label in zip(unit.ids, unit.payload.recipients, labels, strict=True):
                try:
                    one = _Unit((did,), replace(unit.payload, recipients=(recipient,)), (label,))
                    self._send(one, owner, outcome)
                except RetryLater as later:
                    retry = _later(retry, later)
            if retry is not None:
                raise retry
            return
        if exc.suppress_reason:
            with self.sessions.begin() as s:
                for address in unit.addresses:
                    suppressions.suppress(
                        s, unit.channel, address, exc.suppress_reason, "provider", self.clock()
                    )
        self._mark(unit, owner, DeliveryStatus.FAILED, outcome, reason=str(exc)[:500])

    def _transient(
        self, unit: _Unit, owner: str, exc: TransientProviderError, outcome: dict[int, str]
    ) -> None:
        with self.sessions.begin() as s:
            attempts = (
                s.scalar(
                    select(Delivery.attempts)
                    .where(Delivery.id.in_(unit.ids))
                    .order_by(Delivery.attempts.desc())
                    .limit(1)
                )
                or 0
            )
        if attempts >= self.settings.max_attempts:
            self._mark(
                unit,
                owner,
                DeliveryStatus.FAILED,
                outcome,
                reason=f"gave up after {attempts} attempts: {exc}"[:500],
            )
            return
        self._mark(unit, owner, DeliveryStatus.CLAIMED, outcome, reason=f"retrying: {exc}"[:500])
        st = self.settings
        delay = rules.retry_delay_ms(
            attempts, exc.retry_after_s, st.retry_min_backoff_ms, st.retry_max_backoff_ms, random.random()
        )
        raise RetryLater(delay, str(exc))


def _occasion_day(c: _Claimed) -> dt.date | None:
    """The customer's local day of the occasion a dated journey (birthday, anniversary) celebrates."""
    return kind_of(c.journey).occasion_day(c.enrollment_context)


def _update_rows(s: Session, rows: list[dict[str, Any]]) -> None:
    """Write rows that share their columns (and `b_id`, the row's id), one statement per row, sent at once."""
    if rows:
        columns = [k for k in rows[0] if k != "b_id"]
        s.execute(_ROW.values({c: bindparam(c) for c in columns}), rows)
