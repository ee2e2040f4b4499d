"""Re-sending what failed or was skipped for a cause now fixed: `automation deliveries retry`.

A retry is a new delivery of the same enrollment and step, due at `now`, that
names the row it retries in `retry_of`. The database holds each row to one
retry (`retry_of` is unique), so two operators retrying at once, or one
retrying twice, make one new message. The new row goes through the worker like
any other: consent, suppression, quiet hours and caps are judged again at its
due instant. A retry of a retry is allowed: it is another row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from automation.advance.send import QUEUED_COLUMNS, Queued
from automation.core import arms
from automation.core.statuses import DeliveryStatus
from automation.definitions.catalog import Catalog
from automation.store.models import Delivery
from automation.store.sqlutil import insert_ignore

RETRYABLE = (DeliveryStatus.FAILED, DeliveryStatus.SKIPPED)


@dataclass(frozen=True)
class Candidate:
    """A row that would be retried, as the operator sees it."""

    id: int
    journey_id: str
    step_id: str
    customer_id: str
    status: str
    reason: str | None


@dataclass
class RetryResult:
    candidates: list[Candidate] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    made: list[Queued] = field(default_factory=list)


@dataclass(frozen=True)
class Selection:
    """Which rows: these ids, or a journey's rows of one status due since an instant."""

    ids: Sequence[int] = ()
    journey_id: str | None = None
    status: str | None = None
    since: dt.datetime | None = None

    def where(self) -> list[ColumnElement[bool]]:
        if self.ids:
            return [Delivery.id.in_(list(self.ids))]
        assert self.journey_id is not None and self.status is not None and self.since is not None
        return [
            Delivery.journey_id == self.journey_id,
            Delivery.status == self.status,
            Delivery.due_at >= self.since,
        ]


def _why_not(d: Delivery, retried_as: int | None, catalog: Catalog) -> str | None:
    """Why this row gets no retry, or None."""
    if d.status not in RETRYABLE:
        return f"delivery {d.id} is {d.status}: only failed or skipped deliveries are retried"
    if retried_as is not None:
        return f"delivery {d.id} was already retried as delivery {retried_as}"
    journey = catalog.get(d.journey_id)
    if journey is None or d.step_id not in dict(journey.send_steps()):
        return (
            f"delivery {d.id}: journey {d.journey_id!r} has no send step {d.step_id!r} in the journeys "
            "folder; restore it first"
        )
    return None


def _plan(s: Session, selection: Selection, catalog: Catalog, result: RetryResult) -> list[Delivery]:
    retry = aliased(Delivery)
    rows = s.execute(
        select(Delivery, retry.id)
        .outerjoin(retry, retry.retry_of == Delivery.id)
        .where(*selection.where())
        .order_by(Delivery.id)
    ).all()
    found = {d.id for d, _ in rows}
    result.refused.extend((i, f"no delivery {i}") for i in selection.ids if i not in found)
    chosen = []
    for d, retried_as in rows:
        reason = _why_not(d, retried_as, catalog)
        if reason is not None:
            result.refused.append((d.id, reason))
            continue
        chosen.append(d)
        result.candidates.append(Candidate(d.id, d.journey_id, d.step_id, d.customer_id, d.status, d.reason))
    result.refused.sort()
    return chosen


def retry(
    sessions: sessionmaker[Session],
    catalog: Catalog,
    selection: Selection,
    now: dt.datetime,
    *,
    dry_run: bool = False,
) -> RetryResult:
    """Make one new delivery, due at `now`, per selected failed or skipped row (none on a dry run).

    Returns the candidates, the rows refused and why, and the new deliveries to
    enqueue (after the commit, as the tick does).
    """
    result = RetryResult()
    with sessions.begin() as s:
        chosen = _plan(s, selection, catalog, result)
        if dry_run or not chosen:
            return result
        rows = []
        for d in chosen:
            journey = catalog.get(d.journey_id)
            assert journey is not None
            step = dict(journey.send_steps())[d.step_id]
            rows.append(
                {
                    "enrollment_id": d.enrollment_id,
                    "step_id": d.step_id,
                    "journey_id": d.journey_id,
                    "customer_id": d.customer_id,
                    "campaign_id": d.campaign_id,
                    "channel": step.channel,
                    "template": arms.template_now(journey, d.step_id, step, d.customer_id, d.template),
                    "arm": d.arm,
                    "transactional": journey.transactional,
                    "status": DeliveryStatus.QUEUED,
                    "due_at": now,
                    "enqueued_at": now,
                    "attempts": 0,
                    "retry_of": d.id,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        made = insert_ignore(s, Delivery.__table__, rows, ["retry_of"], QUEUED_COLUMNS)
        result.made = [Queued(*r) for r in made]
    return result
