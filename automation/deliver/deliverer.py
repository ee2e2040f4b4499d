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
per `CHUNK` of a message's rows, with a fixed number of set-based queries whatever
its size, and recording the provider's answer in one more; the people
concerned are locked in id order, so two journeys' messages to one person are
judged one after the other and each sees the other in the caps. Emails that can
share a body go to the provider as one batch request (`automation.core.batching`).
Rules are judged at the row's `due_at`, never by the wall clock; what must
wait is written back as `deferred` with a new `due_at` for a later tick.
Every verdict comes from `automation.core.judging`; the message from
`automation.deliver.compose`; the SQL from `automation.deliver.ledger`. What goes
wrong with one row's data is that row's alone: `failed`, with the reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from automation.advance.batch import settle
from automation.config import Settings
from automation.core import arms, batching, judging, planner, rules
from automation.core.coupons import Coupon
from automation.core.journeys import Journey, SendStep
from automation.core.messages import EmailBatch, EmailMessage, SmsMessage
from automation.core.statuses import UNSETTLED, Channel, DeliveryStatus
from automation.core.tokens import unsubscribe_token
from automation.definitions.catalog import Absent, LiveCatalog
from automation.deliver import ledger
from automation.deliver.compose import Composition, Email, Outgoing, Parts, Sender, compose
from automation.enroll.kinds import kind_of
from automation.enroll.removed import REASON as REMOVED
from automation.errors import PermanentProviderError, TransientProviderError
from automation.loyalty import coupons
from automation.loyalty.accounts import standings
from automation.providers.base import EmailProvider, SmsProvider
from automation.store import deferrals as deferral_log
from automation.store import suppressions
from automation.store import topics as topic_choices
from automation.store.models import Delivery

log = logging.getLogger("automation.deliver")
# A row whose journey this worker's folder does not have yet is tried again after this long.
CATALOG_BEHIND_RETRY_MS = 15_000
#: The rows of a message claimed, rendered and sent together: a thread holds this many rendered
#: emails and one request body at a time (a step's 1,000-email message goes as ten requests).
CHUNK = 100

Case = judging.Case[Outgoing]
_Row = tuple[ledger.Loaded, Journey | None, SendStep | None]
UNCLASSIFIED = "the provider call raised an error it could not classify, so it may have gone out: "


class RetryLater(Exception):
    """The provider asked us to come back; the actor turns this into `dramatiq.Retry`."""

    def __init__(self, delay_ms: int, reason: str) -> None:
        super().__init__(reason)
        self.delay_ms = delay_ms


Throttle = Callable[[str], AbstractContextManager[bool]]


def _no_throttle(_channel: str) -> AbstractContextManager[bool]:
    return nullcontext(True)


@dataclass(frozen=True)
class _Unit:
    """One provider request: an email batch or one SMS, and the rows it carries (in recipient order)."""

    ids: tuple[int, ...]
    payload: EmailBatch | SmsMessage
    labels: tuple[tuple[str, str], ...] = ()  # each row's (journey, step), for the outcome log

    @property
    def channel(self) -> Channel:
        return Channel.EMAIL if isinstance(self.payload, EmailBatch) else Channel.SMS

    @property
    def addresses(self) -> tuple[str, ...]:
        if isinstance(self.payload, EmailBatch):
            return tuple(r.to for r in self.payload.recipients)
        return (self.payload.to,)


def channel_caps(settings: Settings) -> dict[Channel, tuple[rules.CapRule, ...]]:
    """The cross-journey frequency caps of each channel, from the settings."""
    st = settings
    return {c: judging.caps(c, st.email_cap_day, st.email_cap_week, st.sms_cap_day) for c in Channel}


def _occasion_day(journey: Journey | None, context: dict[str, object]) -> dt.date | None:
    """The customer's local day of the occasion a dated journey (birthday, anniversary) celebrates."""
    try:
        return kind_of(journey).occasion_day(context) if journey is not None else None
    except ValueError:  # a context this row's data spoilt judges like one without the day
        return None


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


@dataclass
class _Verdicts:
    """One batch's verdicts, grouped by the row write each needs."""

    finals: list[dict[str, object]]
    deferred: list[dict[str, object]]
    sending: list[dict[str, object]]
    emails: list[tuple[int, EmailMessage, dict[str, str]]]
    sms: list[_Unit]
    deferrals: list[dict[str, object]]
    labels: dict[int, tuple[str, str]]


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
        self.caps = channel_caps(settings)
        self.sender = Sender(
            settings.public_url,
            settings.email_from,
            settings.email_from_name,
            settings.sms_from,
            settings.shop(),
        )
        self.email = email
        self.sms = sms
        self.throttle = throttle
        self.clock = clock  # only to stamp `claimed_at` and `sent_at`, never to decide

    # ------------------------------------------------------------ entry points

    def deliver(self, delivery_id: int, message_id: str, claimed_at: dt.datetime | None = None) -> str:
        """Run one delivery for one Dramatiq message; returns the resulting status."""
        return self.deliver_many([delivery_id], message_id, claimed_at)[delivery_id]

    def deliver_many(
        self, ids: Sequence[int], message_id: str, claimed_at: dt.datetime | None = None
    ) -> dict[int, str]:
        """Run the deliveries of one Dramatiq message; returns each row's resulting status.

        `claimed_at` is the claim instant on the enqueuing tick's clock (default: now).

        Raises:
          RetryLater: some rows must be tried again later (the others are recorded).
        """
        outcome: dict[int, str] = {}
        at = claimed_at or self.clock()
        retry: RetryLater | None = None
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start : start + CHUNK]
            with self.sessions.begin() as s:
                units = self._prepare(s, chunk, message_id, at, outcome)
            if any(outcome[i] == DeliveryStatus.CLAIMED for i in chunk):
                behind = RetryLater(CATALOG_BEHIND_RETRY_MS, "waiting for the newest journey catalog")
                retry = _later(retry, behind)
            for unit in units:
                try:
                    self._send(unit, message_id, outcome)
                except RetryLater as exc:
                    retry = _later(retry, exc)
        if retry is not None:
            raise retry
        return outcome

    def give_up(self, ids: Sequence[int], message_id: str, reason: str) -> list[int]:
        """Fail the rows still waiting for a message the worker could not process."""
        with self.sessions.begin() as s:
            return ledger.give_up(s, ids, message_id, reason)

    # ------------------------------------------------------------ claim, judge, render

    def _prepare(
        self, s: Session, ids: list[int], owner: str, at: dt.datetime, outcome: dict[int, str]
    ) -> list[_Unit]:
        """Claim, judge and render in one transaction; rows to send are left `sending`."""
        claim = ledger.claim(s, ids, owner, at)
        outcome.update(dict.fromkeys(claim.died, DeliveryStatus.UNKNOWN))
        for did in claim.died:
            _log_outcome(did, UNLABELLED, DeliveryStatus.UNKNOWN, ledger.DIED_SENDING)
        outcome.update({i: "dropped" for i in ids if i not in claim.ids and i not in claim.died})
        if not claim.ids:
            return []
        cases = self._cases(s, claim.ids, outcome)
        verdicts = self._judge(s, cases, outcome)
        self._settle_coupons(s, cases, outcome)
        for rows in (verdicts.finals, verdicts.sending, verdicts.deferred):
            ledger.update_rows(s, rows)
        settle(s, [*claim.died, *(cast(int, row["b_id"]) for row in verdicts.finals)])
        deferral_log.record(s, verdicts.deferrals)
        units = list(verdicts.sms)
        for grouped in batching.group(verdicts.emails, self.settings.email_batch_size):
            units.append(_Unit(grouped.keys, grouped.batch, tuple(verdicts.labels[i] for i in grouped.keys)))
        return units

    @staticmethod
    def _settle_coupons(s: Session, cases: list[tuple[Delivery, Case]], outcome: dict[int, str]) -> None:
        """Free the codes of rows that took one and then failed before sending; warn on low pools."""
        took = [(d, c) for d, c in cases if c.step is not None and "coupon" in c.__dict__]
        coupons.release(s, [d.id for d, c in took if outcome[d.id] != DeliveryStatus.SENDING])
        if took:
            coupons.warn_low(
                s, {c.step.coupon for _, c in took if c.step and c.step.coupon}, took[0][0].due_at
            )

    def _judge(self, s: Session, cases: list[tuple[Delivery, Case]], outcome: dict[int, str]) -> _Verdicts:
        """Each row's verdict, in person order; a row's failure is its own."""
        out = _Verdicts([], [], [], [], [], [], {})
        # Rows of this batch already bound for a person count in the caps of the person's later rows.
        bound: dict[tuple[str, str], list[dt.datetime]] = {}
        for d, case in cases:
            person = (d.customer_id, d.channel)
            if person in bound and case.facts is not None:
                facts = replace(case.facts, counted=[*case.facts.counted, *bound[person]])
                case = replace(case, facts=facts)
            try:
                verdict = judging.judge(case)
            except Exception as exc:  # one row's failure must not hold the batch
                verdict = judging.Verdict(
                    DeliveryStatus.FAILED, f"judge: {type(exc).__name__} while judging this delivery"
                )
            outcome[d.id] = verdict.status
            out.labels[d.id] = (d.journey_id, d.step_id)
            if verdict.composed is None:
                _log_outcome(d.id, out.labels[d.id], verdict.status, verdict.reason)
            if verdict.status is DeliveryStatus.DEFERRED:
                out.deferrals.append(
                    {
                        "delivery_id": d.id,
                        "judged_at": d.due_at,
                        "until": verdict.due_at,
                        "reason": verdict.reason,
                    }
                )
                out.deferred.append(
                    {
                        "b_id": d.id,
                        "status": DeliveryStatus.DEFERRED,
                        "reason": verdict.reason,
                        "due_at": verdict.due_at,
                        "message_id": None,
                    }
                )
            elif verdict.composed is None:
                out.finals.append({"b_id": d.id, "status": verdict.status, "reason": verdict.reason})
            else:
                outcome[d.id] = DeliveryStatus.SENDING
                bound.setdefault(person, []).append(d.due_at)
                self._to_send(d, verdict.composed, out)
        return out

    def _to_send(self, d: Delivery, composed: judging.Composed[Outgoing], out: _Verdicts) -> None:
        message = composed.message
        address = message.message.to if isinstance(message, Email) else message.to
        out.sending.append(
            {
                "b_id": d.id,
                "status": DeliveryStatus.SENDING,
                "address": address,
                "segments": composed.segments,
                "attempts": d.attempts + 1,
                "provider": (self.email if d.channel == Channel.EMAIL else self.sms).name,
            }
        )
        if isinstance(message, Email):
            out.emails.append((d.id, message.message, message.personal))
        else:
            out.sms.append(_Unit((d.id,), message, ((d.journey_id, d.step_id),)))

    def _cases(self, s: Session, ids: list[int], outcome: dict[int, str]) -> list[tuple[Delivery, Case]]:
        """Every claimed row's case, from one query per kind of fact."""
        loaded = ledger.load(s, ids)
        rows = self._placed(loaded, outcome)
        holds = self._if_holds(s, rows)
        counted = self._counted(s, rows)
        rivals = self._rivals(s, rows)
        choices = topic_choices.of(s, {r.delivery.customer_id for r, j, _ in rows if j and j.topic_id})
        catalog = self.catalogs.current
        loyalty = standings(
            s, catalog.programme, {r.delivery.customer_id: r.delivery.due_at for r, j, _ in rows if j}
        )
        out: list[tuple[Delivery, Case]] = []
        for row, journey, step in rows:
            d, c = row.delivery, row.customer
            priority = journey.priority if journey is not None else 0
            facts = judging.Facts.of(
                c,
                enrollment_state=row.enrollment_state,
                retried_after_removal=d.retry_of is not None and row.enrollment_exit_reason == REMOVED,
                suppressed=row.suppressed,
                timezone=planner.zone(c.timezone, self.settings.default_timezone),
                counted=counted.get((d.customer_id, d.channel), []),
                if_holds=holds.get(d.id),
                first_due_at=d.first_due_at,
                queued_at=d.enqueued_at,
                occasion_day=_occasion_day(journey, row.enrollment_context),
                ahead=[
                    due
                    for rank, due, rid, lapses in rivals.get((d.customer_id, d.channel), [])
                    if judging.outranks(priority, d.due_at, d.id, (rank, due, rid))
                    and judging.contends(lapses, max(d.due_at, d.enqueued_at or d.due_at))
                ],
                in_topic=journey is None
                or topic_choices.admits(catalog, journey, d.channel, choices.get(d.customer_id, {})),
            )
            out.append((d, self._case(d, journey, step, row, facts, loyalty.get(d.customer_id), s)))
        found = {r.delivery.id for r in loaded}
        return out + self._unloaded(s, [i for i in ids if i not in found])

    def _placed(self, loaded: list[ledger.Loaded], outcome: dict[int, str]) -> list[_Row]:
        """The rows with their journey and step (None where gone).

        A row whose journey this process's catalog does not have yet (another
        process runs a newer one) is left `claimed` for a retry, not judged.
        """
        rows: list[_Row] = []
        behind: list[int] = []
        for row in loaded:
            found = self.catalogs.find(row.delivery.journey_id, row.delivery.step_id)
            if found is Absent.BEHIND:
                behind.append(row.delivery.id)
            else:
                rows.append((row, *found) if isinstance(found, tuple) else (row, None, None))
        if behind:
            outcome.update(dict.fromkeys(behind, DeliveryStatus.CLAIMED))
            log.warning(
                "%d deliveries wait for a newer journey catalog than %s (retried later)",
                len(behind),
                self.catalogs.current.version,
            )
        return rows

    def _unloaded(self, s: Session, ids: list[int]) -> list[tuple[Delivery, Case]]:
        """Cases for claimed rows whose enrollment or customer is gone: the judge skips them."""
        out: list[tuple[Delivery, Case]] = []
        for d in s.scalars(select(Delivery).where(Delivery.id.in_(ids))) if ids else ():
            where = self.catalogs.find(d.journey_id, d.step_id)
            journey, step = where if isinstance(where, tuple) else (None, None)
            out.append((d, self._case(d, journey, step, None, None)))
        return out

    @staticmethod
    def _capped(rows: list[_Row]) -> list[Delivery]:
        """The rows the frequency cap applies to."""
        return [
            row.delivery
            for row, journey, _ in rows
            if journey is not None and journey.frequency_cap and not journey.transactional
        ]

    def _window(self, capped: list[Delivery]) -> tuple[dt.datetime, dt.datetime]:
        """From the earliest capped due instant less its widest cap window to the latest plus it."""
        windows = [judging.max_window(self._caps(d.channel)) for d in capped]
        since = min(d.due_at - w for d, w in zip(capped, windows, strict=True))
        until = max(d.due_at + w for d, w in zip(capped, windows, strict=True))
        return since, until

    def _rivals(
        self, s: Session, rows: list[_Row]
    ) -> dict[tuple[str, str], list[tuple[int, dt.datetime, int, dt.datetime | None]]]:
        """Each person's other capped messages to go, as (priority, due, id, lapses), near this batch's."""
        capped = self._capped(rows)
        if not capped:
            return {}
        since, until = self._window(capped)
        people, channels = {d.customer_id for d in capped}, {d.channel for d in capped}
        catalog = self.catalogs.current
        out: dict[tuple[str, str], list[tuple[int, dt.datetime, int, dt.datetime | None]]] = {}
        batch = [row.delivery.id for row, _, _ in rows]
        for rid, cid, channel, due_at, first_due_at, jid in ledger.rivals(
            s, people, channels, since, until, batch
        ):
            journey = catalog.get(jid)
            if journey is not None and journey.frequency_cap:
                lapses = judging.lapses_at(journey, first_due_at)
                out.setdefault((cid, channel), []).append((journey.priority, due_at, rid, lapses))
        return out

    def _case(
        self,
        d: Delivery,
        journey: Journey | None,
        step: SendStep | None,
        row: ledger.Loaded | None,
        facts: judging.Facts | None,
        loyalty: dict[str, Any] | None = None,
        s: Session | None = None,
    ) -> Case:
        def take() -> Coupon | None:
            assert step is not None and step.coupon is not None and s is not None
            return coupons.take(s, step.coupon, d.id, d.due_at)

        def build() -> Composition:
            assert journey is not None and step is not None and row is not None and facts is not None
            address = (facts.email if d.channel == Channel.EMAIL else facts.phone) or ""
            links = (self.link("unsubscribe", d.id), self.link("confirm", d.id))
            template = arms.template_now(journey, d.step_id, step, d.customer_id, d.template)
            held = case.coupon.variables() if step.coupon is not None and case.coupon is not None else None
            parts = Parts(
                d.id,
                journey,
                step,
                template,
                row.customer,
                row.enrollment_context,
                address,
                *links,
                loyalty,
                held,
            )
            return compose(parts, self.catalogs.current.renderer, self.sender, self._checks)

        case: Case = judging.Case(
            d.channel, d.due_at, journey, step, facts, self._caps(d.channel), build, take
        )
        return case

    def _checks(self, message: EmailMessage | SmsMessage) -> str | None:
        if isinstance(message, EmailMessage):
            return self.email.problem(message)
        return self.sms.problem(message)

    @staticmethod
    def _if_holds(s: Session, rows: list[_Row]) -> dict[int, bool | str]:
        """Delivery id -> whether its step's `if` holds now, or why it cannot be told."""
        by_step: dict[tuple[str, str], tuple[SendStep, set[int]]] = {}
        for row, _, step in rows:
            if step is not None and step.if_ is not None:
                d = row.delivery
                by_step.setdefault((d.journey_id, d.step_id), (step, set()))[1].add(d.id)
        holds: dict[int, bool | str] = {}
        for step, ids in by_step.values():
            assert step.if_ is not None
            holds.update(ledger.if_holds(s, step.if_, ids))
        return holds

    def _caps(self, channel: Channel) -> tuple[rules.CapRule, ...]:
        return self.caps[channel]

    def _counted(self, s: Session, rows: list[_Row]) -> dict[tuple[str, str], list[dt.datetime]]:
        """Due instants of each person's counted messages per channel, around this batch's."""
        capped = self._capped(rows)
        if not capped:
            return {}
        since, _ = self._window(capped)
        return ledger.counted(s, {d.customer_id for d in capped}, {d.channel for d in capped}, since)

    def link(self, route: str, delivery_id: int) -> str:
        """A signed per-delivery link: `unsubscribe` (the preference centre) or `confirm` (double opt-in)."""
        token = unsubscribe_token(delivery_id, self.settings.unsubscribe_secret.get_secret_value())
        return f"{self.settings.public_url.rstrip('/')}/{route}/{token}"

    # ------------------------------------------------------------ send and record

    def _mark(
        self,
        unit: _Unit,
        owner: str,
        status: DeliveryStatus,
        outcome: dict[int, str],
        **values: object,
    ) -> None:
        """Move this message's rows to `status` in one statement; a settled row's enrollment may complete.

        The enrollment is settled in the same transaction, so recording a send is one commit.
        """
        with self.sessions.begin() as s:
            ledger.mark(s, unit.ids, owner, status, **values)
            if status not in UNSETTLED:
                settle(s, unit.ids)
        outcome.update(dict.fromkeys(unit.ids, status))
        reason = values.get("reason")
        for did, label in zip(unit.ids, unit.labels or (UNLABELLED,) * len(unit.ids), strict=True):
            _log_outcome(did, label, status, reason if isinstance(reason, str) else None)

    def _not_sent(self, unit: _Unit, owner: str, reason: str, outcome: dict[int, str]) -> RetryLater:
        """Nothing reached the provider: back to `claimed`, not counted as an attempt."""
        with self.sessions.begin() as s:
            ledger.release_claim(s, unit.ids, owner, reason)
        outcome.update(dict.fromkeys(unit.ids, DeliveryStatus.CLAIMED))
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
            except Exception as exc:  # the adapter could not say whether it went out
                log.error(
                    "%s provider call raised %s; %d deliveries marked unknown",
                    unit.channel,
                    type(exc).__name__,
                    len(unit.ids),
                )
                self._mark(
                    unit,
                    owner,
                    DeliveryStatus.UNKNOWN,
                    outcome,
                    reason=f"{UNCLASSIFIED}{type(exc).__name__}",
                )
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
            attempts = ledger.most_attempts(s, unit.ids)
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
