"""Manual campaigns: enroll a filtered audience into a journey at once, or cancel it.

The audience is chosen inside the database: the journey's `audience` AND the
campaign's filter AND, when given, a list of customer ids. It is enrolled a
chunk at a time (keyset pagination over `customers.id`, one transaction per
chunk), so a million customers never sit in memory nor in one transaction.
The campaign id is the enrollments' occurrence key: launching the same
campaign twice enrolls nobody twice. The tick then turns enrollments into
deliveries, which the worker judges (consent, quiet hours, caps) as usual.

`rate_per_s` staggers the enrollments' first step: the i-th customer is due at
launch + i / rate seconds, so each tick releases only what has fallen due.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, cast

from jinja2 import meta
from sqlalchemy import ColumnElement, Table, delete, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, sessionmaker

from automation.core.context import message_context
from automation.core.entry import occurrence_key
from automation.core.filters import Filter
from automation.core.journeys import Journey
from automation.core.statuses import PENDING, CampaignStatus, Channel, DeliveryStatus, EnrollmentState
from automation.core.suggest import unknown
from automation.definitions.catalog import Catalog, variables_for
from automation.definitions.loader import MAX_FILTER_BYTES, parse_filter, read_definition
from automation.definitions.rendering import (
    EMAIL_PARTS,
    SMS_PARTS,
    RenderedEmail,
    RenderedSms,
    RenderError,
)
from automation.enroll import entry, manual, policy
from automation.enroll.kinds import template_variables
from automation.errors import DefinitionError, UserError
from automation.insight.would import Caps, judge_sends
from automation.store import statistics
from automation.store.filter_sql import compile_filter
from automation.store.models import (
    Campaign,
    Customer,
    Delivery,
    Enrollment,
    EnrollmentWait,
    JSONType,
    UTCDateTime,
)
from automation.store.sqlutil import insert_ignore

CHUNK = 5000
Progress = Callable[[int], None]
CustomerIds = Path | Iterable[str]


class CampaignError(UserError):
    """A campaign cannot be launched or cancelled as asked."""


# ---------------------------------------------------------------- input


def parse_where(value: str) -> Filter:
    """A filter from YAML text, or from the YAML file that `value` names."""
    path = Path(value)
    source, text = "--where", value
    try:
        if len(value) < 1024 and "\n" not in value and path.exists():
            source, text = str(path), read_definition(path, MAX_FILTER_BYTES)
        elif value.endswith((".yaml", ".yml")):
            raise CampaignError(f"--where {value}: no such file")
        return parse_filter_text(text, source)
    except DefinitionError as exc:
        raise CampaignError(str(exc)) from None


def parse_filter_text(text: str, source: str) -> Filter:
    """A filter from YAML text; a problem is `SOURCE:LINE:COL: message`, as for a journey file."""
    try:
        return parse_filter(text, source)
    except DefinitionError as exc:
        raise CampaignError(str(exc)) from None


def parse_rate(value: str) -> float:
    """`50/s`, `50` or `3000/m` as messages per second."""
    text = value.strip().lower().replace(" ", "")
    per = 1.0
    for suffix, seconds in (("/s", 1.0), ("/m", 60.0), ("/h", 3600.0)):
        if text.endswith(suffix):
            text, per = text[: -len(suffix)], seconds
            break
    try:
        rate = float(text) / per
    except ValueError:
        raise CampaignError(f"--rate {value!r} is not a rate like 50/s") from None
    if not rate > 0:
        raise CampaignError("--rate must be above zero")
    return rate


def _ids_from(customer_ids: CustomerIds) -> Iterator[str]:
    if isinstance(customer_ids, Path):
        try:
            handle = customer_ids.open(encoding="utf-8")
        except OSError as exc:
            raise CampaignError(f"cannot read {customer_ids}: {exc.strerror}") from None
        with handle:
            for line in handle:
                if line.strip():
                    yield line.strip()
    else:
        yield from (i for i in customer_ids if i)


def _batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def mask_email(address: str | None) -> str:
    """`a***@example.com`: enough to recognise, not enough to leak."""
    if not address or "@" not in address:
        return "-"
    local, domain = address.split("@", 1)
    return f"{local[:1]}***@{domain}"


def new_campaign_id(journey_id: str, now: dt.datetime) -> str:
    return f"{journey_id}-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"


# ---------------------------------------------------------------- audience


def get_journey(catalog: Catalog, journey_id: str) -> Journey:
    journey = catalog.get(journey_id)
    if journey is None:
        raise CampaignError(unknown("journey", journey_id, catalog.journeys))
    if not journey.enabled:
        raise CampaignError(f"journey {journey_id!r} is disabled (enabled: false)")
    allowed = variables_for(manual.KIND)
    needs: set[str] = set()
    for _, step in journey.send_steps():
        for template in step.templates():
            needs |= _template_variables(catalog, template, step.channel) - allowed
    if needs:
        raise CampaignError(
            f"journey {journey_id!r} cannot be sent as a campaign: its templates read "
            f"{', '.join(sorted(needs))}, which only its own trigger provides"
        )
    return journey


def _template_variables(catalog: Catalog, name: str, channel: str) -> set[str]:
    """The variables a (validated) template reads, its layout aside."""
    renderer = catalog.renderer
    found: set[str] = set()
    for part in EMAIL_PARTS if channel == Channel.EMAIL else SMS_PARTS:
        source = (renderer.templates_dir / name / part).read_text(encoding="utf-8")
        found |= meta.find_undeclared_variables(renderer.env.parse(source))
    return found


def conditions(journey: Journey, where: Filter | None, now: dt.datetime) -> list[ColumnElement[bool]]:
    """Who is in the audience at `now`: the journey's audience, the filter, past the re-entry cooldown."""
    return [
        compile_filter(journey.audience),
        compile_filter(where),
        *policy.cooled_down(journey, Customer.id, now),
    ]


def _pages(
    sessions: sessionmaker[Session],
    conds: Sequence[ColumnElement[bool]],
    customer_ids: CustomerIds | None,
    chunk: int,
) -> Iterator[list[str]]:
    """The audience's customer ids, one ordered chunk at a time, each read in its own session."""
    if customer_ids is None:
        last = ""
        while True:
            with sessions() as s:
                ids = list(
                    s.scalars(
                        select(Customer.id)
                        .where(*conds, Customer.id > last)
                        .order_by(Customer.id)
                        .limit(chunk)
                    )
                )
            if not ids:
                return
            yield ids
            last = ids[-1]
    else:
        for batch in _batched(_ids_from(customer_ids), chunk):
            with sessions() as s:
                ids = list(
                    s.scalars(
                        select(Customer.id).where(*conds, Customer.id.in_(set(batch))).order_by(Customer.id)
                    )
                )
            if ids:
                yield ids


def count_audience(
    sessions: sessionmaker[Session],
    journey: Journey,
    where: Filter | None,
    customer_ids: CustomerIds | None,
    now: dt.datetime,
) -> int:
    """How many customers the campaign would reach (counted in the database)."""
    conds = conditions(journey, where, now)
    if customer_ids is None:
        with sessions() as s:
            return int(s.scalar(select(func.count()).select_from(Customer).where(*conds)) or 0)
    return sum(len(ids) for ids in _pages(sessions, conds, customer_ids, CHUNK))


@dataclass(frozen=True)
class SampleRecipient:
    customer_id: str
    email: str  # masked
    timezone: str | None


@dataclass
class Reach:
    """Of the audience, who would receive the first message at launch, and why the others not."""

    receive: int = 0
    later: Counter[str] = field(default_factory=Counter)  # deferred, by reason
    not_sent: Counter[str] = field(default_factory=Counter)  # skipped or suppressed, by reason


@dataclass
class Preview:
    journey_id: str
    audience_size: int
    sample: list[SampleRecipient] = field(default_factory=list)
    message: str | None = None
    reach: Reach | None = None


def reach(
    sessions: sessionmaker[Session],
    catalog: Catalog,
    journey: Journey,
    where: Filter | None,
    customer_ids: CustomerIds | None,
    now: dt.datetime,
    *,
    default_tz: str,
    caps: Caps,
) -> Reach:
    """The first send judged for every audience member at launch, a chunk at a time, as the worker would.

    Consent, suppression, the step's `if`, quiet hours and the frequency cap are
    judged at `now` by the worker's own function (`automation.insight.would`).
    """
    out = Reach()
    sends = journey.send_steps()
    if not sends:
        return out
    step = sends[0][1]
    for ids in _pages(sessions, conditions(journey, where, now), customer_ids, CHUNK):
        with sessions() as s:
            verdicts = judge_sends(s, catalog, journey, step, ids, now, default_tz=default_tz, caps=caps)
        for verdict in verdicts.values():
            if verdict.status is DeliveryStatus.SENDING:
                out.receive += 1
            elif verdict.status is DeliveryStatus.DEFERRED:
                out.later[verdict.reason or ""] += 1
            else:
                out.not_sent[f"{verdict.status}: {verdict.reason}"] += 1
    return out


def preview(
    sessions: sessionmaker[Session],
    catalog: Catalog,
    journey_id: str,
    *,
    where: Filter | None = None,
    customer_ids: CustomerIds | None = None,
    campaign_id: str | None = None,
    now: dt.datetime,
    brand: str,
    sample_size: int = 5,
    judged: tuple[str, Caps] | None = None,
) -> Preview:
    """The dry run: audience size, a few recipients (PII masked) and the first message rendered.

    With `judged` (the default time zone and the caps), also who would receive it at launch (`reach`).
    """
    journey = get_journey(catalog, journey_id)
    size = count_audience(sessions, journey, where, customer_ids, now)
    result = Preview(journey.id, size)
    if judged is not None:
        default_tz, caps = judged
        result.reach = reach(
            sessions, catalog, journey, where, customer_ids, now, default_tz=default_tz, caps=caps
        )
    conds = conditions(journey, where, now)
    page = sample_size if customer_ids is None else CHUNK  # a file's first lines may not match
    first = next(_pages(sessions, conds, customer_ids, page), [])[:sample_size]
    with sessions() as s:
        customers = list(s.scalars(select(Customer).where(Customer.id.in_(first)).order_by(Customer.id)))
    result.sample = [SampleRecipient(c.id, mask_email(c.email), c.timezone) for c in customers]
    sends = journey.send_steps()
    if customers and sends:
        cid = campaign_id or new_campaign_id(journey.id, now)
        result.message = _render_sample(catalog, journey, customers[0], cid, brand)
    return result


def render_first(
    catalog: Catalog, journey: Journey, customer: Customer, campaign_id: str, brand: str
) -> RenderedEmail | RenderedSms:
    """The campaign's first message as this customer would get it (raises `RenderError`)."""
    step_id, step = journey.send_steps()[0]
    template = step.assign(journey.id, step_id, customer.id)[0]
    ctx = message_context(
        journey,
        customer,
        template_variables(journey, manual.context(campaign_id)),
        delivery_id=0,
        unsubscribe_url="<unsubscribe link>",
        confirm_url="<confirmation link>",
        brand=brand,
    )
    if step.channel == Channel.SMS:
        return catalog.renderer.render_sms(template, ctx)
    return catalog.renderer.render_email(template, ctx)


def _render_sample(
    catalog: Catalog, journey: Journey, customer: Customer, campaign_id: str, brand: str
) -> str:
    try:
        message = render_first(catalog, journey, customer, campaign_id, brand)
    except RenderError as exc:
        return f"(cannot render the sample: {exc})"
    if isinstance(message, RenderedSms):
        return message.body
    return f"Subject: {message.subject}\n\n{message.text}"


# ---------------------------------------------------------------- launch


@dataclass(frozen=True)
class LaunchResult:
    campaign_id: str
    journey_id: str
    matched: int  # audience members seen this run
    enrolled: int  # newly enrolled this run
    audience_size: int  # everyone enrolled by the campaign, over all runs
    resumed: bool  # the campaign existed already
    stopped: bool = False  # cancelled while launching


def describe(
    where: Filter | None, customer_ids: CustomerIds | None = None, rate_per_s: float | None = None
) -> dict[str, Any]:
    """What the campaign row keeps of the launch request (its `filter` column)."""
    return {
        "where": where.model_dump(mode="json", by_alias=True, exclude_unset=True) if where else None,
        "customers": str(customer_ids) if isinstance(customer_ids, Path) else None,
        "rate_per_s": rate_per_s,
    }


def campaign_id_for(journey: Journey, campaign_id: str | None, now: dt.datetime) -> str:
    """The id asked for, else one made of the journey and `now`; refused when too long."""
    cid = campaign_id or new_campaign_id(journey.id, now)
    if not 0 < len(cid) <= 128:
        raise CampaignError("a campaign id has 1 to 128 characters")
    return cid


def open_campaign(
    s: Session,
    journey: Journey,
    campaign_id: str,
    launched_by: str,
    now: dt.datetime,
    described: dict[str, Any],
    *,
    status: CampaignStatus = CampaignStatus.LAUNCHING,
    confirmed: int | None = None,
) -> bool:
    """Record the campaign, or check that a relaunch matches it; True when it existed."""
    row = {
        "id": campaign_id,
        "journey_id": journey.id,
        "launched_by": launched_by[:128],
        "launched_at": now,
        "filter": described,
        "audience_size": 0,
        "status": status,
        "confirmed_audience": confirmed,
    }
    created = insert_ignore(s, Campaign.__table__, [row], ["id"], ["id"])
    if created:
        return False
    existing = s.get(Campaign, campaign_id)
    assert existing is not None
    if existing.journey_id != journey.id:
        raise CampaignError(
            f"campaign {campaign_id!r} already exists for journey {existing.journey_id!r}; "
            "choose another --campaign-id"
        )
    if existing.status == CampaignStatus.CANCELLED:
        raise CampaignError(f"campaign {campaign_id!r} was cancelled; launch it under a new --campaign-id")
    return True


ENROLL_COLUMNS = (*entry.COLUMNS, "campaign_id")


def enroll_chunk(
    s: Session,
    journey: Journey,
    campaign_id: str,
    ids: list[str],
    scope: Sequence[ColumnElement[bool]],
    offset: int,
    now: dt.datetime,
    rate_per_s: float | None,
) -> int:
    """Enroll one chunk, skipping anyone already enrolled under this occurrence; returns how many."""
    first = journey.step_ids()[0]
    key = occurrence_key(journey, campaign_id)
    context = manual.context(campaign_id)
    insert = (postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert)(
        cast(Table, Enrollment.__table__)
    )
    conflict = entry.UNIQUE
    if rate_per_s is None:
        # Everyone is due at launch: the rows are made inside the database.
        chosen = select(
            literal(journey.id),
            Customer.id,
            literal(key),
            literal(now, UTCDateTime),
            literal(now, UTCDateTime),
            literal(EnrollmentState.ACTIVE.value),
            literal(first),
            literal(now, UTCDateTime),
            literal(context, JSONType),
            literal(campaign_id),
        ).where(*scope)
        stmt = insert.from_select(ENROLL_COLUMNS, chosen).on_conflict_do_nothing(index_elements=conflict)
        return len(s.scalars(stmt.returning(Enrollment.id)).all())
    # Staggered: each row's due instant depends on its rank, so the chunk is built here.
    rows = [
        dict(
            zip(
                ENROLL_COLUMNS,
                (
                    journey.id,
                    cid,
                    key,
                    now,
                    now,
                    EnrollmentState.ACTIVE,
                    first,
                    now + dt.timedelta(seconds=(offset + n) / rate_per_s),
                    context,
                    campaign_id,
                ),
                strict=True,
            )
        )
        for n, cid in enumerate(ids)
    ]
    return len(insert_ignore(s, Enrollment.__table__, rows, conflict, ["id"], one_statement=True))


def launch(
    sessions: sessionmaker[Session],
    catalog: Catalog,
    journey_id: str,
    *,
    now: dt.datetime,
    launched_by: str,
    where: Filter | None = None,
    customer_ids: CustomerIds | None = None,
    campaign_id: str | None = None,
    rate_per_s: float | None = None,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> LaunchResult:
    """Enroll the audience into `journey_id` as campaign `campaign_id`, a chunk per transaction.

    Idempotent: a second launch of the same campaign id enrolls only those not
    yet enrolled (for instance after an interrupted launch). Deliveries are
    made by the next tick (the scheduler's, or one run at `now` to send at
    once); the worker then applies consent, quiet hours and caps.

    Raises `CampaignError` for an unknown or disabled journey, a campaign id
    used by another journey, or a cancelled campaign.
    """
    journey = get_journey(catalog, journey_id)
    cid = campaign_id_for(journey, campaign_id, now)
    with sessions.begin() as s:
        resumed = open_campaign(s, journey, cid, launched_by, now, describe(where, customer_ids, rate_per_s))
    conds = conditions(journey, where, now)
    matched = enrolled = 0
    stopped = False
    for ids in _pages(sessions, conds, customer_ids, chunk):
        with sessions.begin() as s:
            if s.scalar(select(Campaign.status).where(Campaign.id == cid)) == CampaignStatus.CANCELLED:
                stopped = True
                break
            if customer_ids is None:  # a keyset page: every match between its first and last id
                scope = [*conds, Customer.id >= ids[0], Customer.id <= ids[-1]]
            else:
                scope = [*conds, Customer.id.in_(ids)]
            added = enroll_chunk(s, journey, cid, ids, scope, matched, now, rate_per_s)
            statistics.keep_up(s, Enrollment.__tablename__, added)
            enrolled += added
        matched += len(ids)
        if progress:
            progress(len(ids))
    with sessions.begin() as s:
        size = int(s.scalar(select(func.count()).where(Enrollment.campaign_id == cid)) or 0)
        s.execute(
            update(Campaign)
            .where(Campaign.id == cid, Campaign.status != CampaignStatus.CANCELLED)
            .values(audience_size=size, status=CampaignStatus.LAUNCHED)
        )
    return LaunchResult(cid, journey.id, matched, enrolled, size, resumed, stopped)


# ---------------------------------------------------------------- cancel


@dataclass(frozen=True)
class CancelResult:
    campaign_id: str
    enrollments: int
    deliveries: int


def cancel(sessions: sessionmaker[Session], campaign_id: str, now: dt.datetime) -> CancelResult:
    """Stop what the campaign has not sent yet: its enrollments, its queued or deferred deliveries.

    A delivery already claimed by a worker is skipped there, because the worker
    checks its enrollment's state before sending; one already handed to the
    provider is not called back.
    """
    with sessions.begin() as s:
        campaign = s.get(Campaign, campaign_id)
        if campaign is None:
            raise CampaignError(f"no campaign {campaign_id!r}")
        campaign.status = CampaignStatus.CANCELLED
        campaign.cancelled_at = campaign.cancelled_at or now
        enrollments = _rowcount(
            s,
            update(Enrollment)
            .where(
                Enrollment.campaign_id == campaign_id,
                # Active until its last message is settled: one in a worker's hands
                # is skipped there, at the worker's check of the enrollment's state.
                Enrollment.state == EnrollmentState.ACTIVE,
            )
            .values(
                state=EnrollmentState.CANCELLED,
                exited_at=now,
                exit_reason="campaign cancelled",
                next_step_id=None,
                next_at=None,
            ),
        )
        of_campaign = select(Enrollment.id).where(Enrollment.campaign_id == campaign_id)
        s.execute(delete(EnrollmentWait).where(EnrollmentWait.enrollment_id.in_(of_campaign)))
        deliveries = _rowcount(
            s,
            update(Delivery)
            .where(Delivery.campaign_id == campaign_id, Delivery.status.in_(PENDING))
            .values(status=DeliveryStatus.SKIPPED, reason="cancelled", updated_at=now),
        )
    return CancelResult(campaign_id, enrollments, deliveries)


def _rowcount(s: Session, stmt: Any) -> int:
    return int(cast(CursorResult[Any], s.execute(stmt)).rowcount or 0)
