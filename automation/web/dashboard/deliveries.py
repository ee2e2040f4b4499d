"""The delivery ledger with filters, newest due first, paged by the (due_at, id) keyset.

Each filter is an equality or a range on an indexed column; the order is the
index order, so any page costs one index range scan however deep it is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from automation.core.statuses import Channel, DeliveryStatus
from automation.store.models import Delivery
from automation.web.dashboard.paging import PAGE_SIZE, Cursor, Page, decode, page_of

STATUSES = tuple(DeliveryStatus)
CHANNELS = tuple(Channel)


@dataclass(frozen=True)
class LedgerFilter:
    """The deliveries page's filter: each field narrows the ledger, None leaves it open."""

    journey: str | None = None
    step: str | None = None
    status: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    channel: str | None = None
    customer: str | None = None
    campaign: str | None = None

    @property
    def since_day(self) -> str:
        return f"{self.since:%Y-%m-%d}" if self.since else ""

    @property
    def until_day(self) -> str:
        """The last day included (`until` is the instant after it)."""
        return f"{self.until - dt.timedelta(days=1):%Y-%m-%d}" if self.until else ""

    def query(self) -> dict[str, str]:
        """The filter as query parameters (for page links), empty ones left out."""
        out = {k: v for k, v in vars(self).items() if isinstance(v, str) and v}
        out.update({k: v for k, v in (("since", self.since_day), ("until", self.until_day)) if v})
        return out


def _day(text: str | None, end: bool) -> dt.datetime | None:
    if not text:
        return None
    try:
        start = dt.datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return start + dt.timedelta(days=1) if end else start


def parse_filter(params: dict[str, str]) -> LedgerFilter:
    """A filter from query parameters: unknown statuses or channels and bad dates are ignored."""

    def text(name: str) -> str | None:
        value = (params.get(name) or "").strip()
        return value[:320] or None

    status = text("status")
    channel = text("channel")
    return LedgerFilter(
        journey=text("journey"),
        step=text("step"),
        status=status if status in STATUSES else None,
        channel=channel if channel in CHANNELS else None,
        customer=text("customer"),
        campaign=text("campaign"),
        since=_day(params.get("since"), end=False),
        until=_day(params.get("until"), end=True),
    )


def ledger(s: Session, f: LedgerFilter, after: str | None, size: int = PAGE_SIZE) -> Page[Delivery]:
    conds = []
    for column, value in (
        (Delivery.journey_id, f.journey),
        (Delivery.step_id, f.step),
        (Delivery.status, f.status),
        (Delivery.channel, f.channel),
        (Delivery.customer_id, f.customer),
        (Delivery.campaign_id, f.campaign),
    ):
        if value is not None:
            conds.append(column == value)
    if f.since is not None:
        conds.append(Delivery.due_at >= f.since)
    if f.until is not None:
        conds.append(Delivery.due_at < f.until)
    cursor = decode(after)
    if cursor is not None:
        conds.append(
            or_(Delivery.due_at < cursor.at, and_(Delivery.due_at == cursor.at, Delivery.id < cursor.number))
        )
    rows = list(
        s.scalars(
            select(Delivery)
            .where(*conds)
            .order_by(Delivery.due_at.desc(), Delivery.id.desc())
            .limit(size + 1)
        )
    )
    return page_of(rows, size, lambda d: Cursor(d.due_at, str(d.id)))
