"""The overview: headline figures with a daily trend, messages per day, what needs attention.

Every figure is a count of the last `DAYS` days (UTC calendar days, the
current one included, up to `now`), summed from the running tallies the
database keeps (`automation.store.tallies`), not counted over the ledger. The KPIs of
`automation kpis` are not recomputed here: they are read from the daily
snapshots `insight refresh` stores (`automation.insight.snapshots`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from automation.core import kpis as maths
from automation.core.statuses import REPORTED, Channel, DeliveryStatus
from automation.definitions.catalog import Catalog
from automation.insight import reporting, snapshots
from automation.loyalty import coupons
from automation.store import tallies
from automation.store.models import Delivery, ProviderEvent

DAYS = 30
#: The lines drawn; a message in a worker's hands counts as sent, one not yet due as queued.
STATUSES = tuple(s for s in REPORTED if s is not DeliveryStatus.SENDING)
SHOWN_AS = {DeliveryStatus.CLAIMED: DeliveryStatus.SENT, DeliveryStatus.SENDING: DeliveryStatus.SENT}


@dataclass(frozen=True)
class Series:
    """One line of a chart: a label and a value per day."""

    label: str
    values: list[float | None]  # None: no figure that day

    @property
    def total(self) -> float:
        return sum(v for v in self.values if v is not None)


@dataclass(frozen=True)
class Chart:
    title: str
    days: list[str]
    series: list[Series]


@dataclass(frozen=True)
class Trend:
    """One KPI of `automation kpis`: its last snapshot's value as the CLI shows it, and its daily line."""

    name: str
    latest: str
    chart: Chart


@dataclass
class Attention:
    unknown: int = 0
    failed_last_day: int = 0
    problems: list[str] = field(default_factory=list)
    low_pools: list[coupons.PoolStatus] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(self.unknown or self.failed_last_day or self.problems or self.low_pools)


@dataclass(frozen=True)
class Overview:
    trends: list[Trend]
    snapshot_day: dt.date | None  # the last snapshot's, None before the first `insight refresh`
    kpis: list[Chart]
    conversions: int  # as `automation status` counts them, over the same days
    messages: list[Chart]
    attention: Attention


def conversions(sessions: sessionmaker[Session], catalog: Catalog | None, now: dt.datetime) -> int:
    """Enrollments converted after a send of the last `DAYS` days, by each journey's goal."""
    if catalog is None:
        return 0
    first, _ = days_until(now)
    return reporting.conversions(sessions, catalog, first, now)


def days_until(now: dt.datetime, count: int = DAYS) -> tuple[dt.datetime, list[str]]:
    """The start of the first of the `count` UTC days ending today, and their labels."""
    today = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - dt.timedelta(days=count - 1)
    return first, [f"{first + dt.timedelta(days=n):%Y-%m-%d}" for n in range(count)]


def _spread(days: list[str], counts: dict[str, int]) -> list[float | None]:
    return [counts.get(d, 0) for d in days]


def trends(s: Session, now: dt.datetime) -> tuple[list[Trend], dt.date | None]:
    """Each KPI over the last `DAYS` days from the daily snapshots, and the last snapshot's day."""
    first, days = days_until(now)
    rows = snapshots.recent(s, first.date())
    if not rows:
        return [], None
    by_day = {f"{r.day:%Y-%m-%d}": r.figures for r in rows}
    last = rows[-1].figures
    return [
        Trend(
            name,
            maths.shown(name, last.get(name)),
            Chart(name, days, [Series(name, [by_day.get(d, {}).get(name) for d in days])]),
        )
        for name in last
    ], rows[-1].day


def messages(s: Session, now: dt.datetime) -> list[Chart]:
    """Per channel, a line per status: deliveries by the day they were due."""
    first, days = days_until(now)
    by: dict[tuple[str, str], dict[str, int]] = {}
    counts = tallies.counted(
        s,
        tallies.DELIVERIES,
        ("day", "channel", "status"),
        *tallies.span(Delivery.due_at, first, now, through=True),
    )
    for (when, channel, status), count in counts.items():
        shown = SHOWN_AS.get(DeliveryStatus(status), DeliveryStatus(status))
        key = by.setdefault((channel, shown), {})
        key[when] = key.get(when, 0) + count["n"]
    return [
        Chart(
            f"{channel} messages per day",
            days,
            [Series(st, _spread(days, by.get((channel, st), {}))) for st in STATUSES],
        )
        for channel in Channel
    ]


def kpis(s: Session, now: dt.datetime) -> list[Chart]:
    """Sent, delivered, opened and clicked per day: each a figure and its trend."""
    first, days = days_until(now)
    due = tallies.span(Delivery.due_at, first, now, through=True)
    sent = {
        when: c["n"]
        for (when,), c in tallies.counted(
            s, tallies.DELIVERIES, ("day",), *due, match={"status": DeliveryStatus.SENT}
        ).items()
    }
    occurred = tallies.span(ProviderEvent.occurred_at, first, now, through=True)
    events: dict[str, dict[str, int]] = {}
    for (when, kind), c in tallies.counted(
        s, tallies.PROVIDER_EVENTS, ("day", "event_type"), *occurred
    ).items():
        events.setdefault(kind, {})[when] = c["n"]
    figures = (
        ("Sent", sent),
        ("Delivered", events.get("delivered", {})),
        ("Opened", events.get("open", {})),
        ("Clicked", events.get("click", {})),
    )
    return [Chart(label, days, [Series(label, _spread(days, counts))]) for label, counts in figures]


def attention(s: Session, now: dt.datetime, problems: list[str]) -> Attention:
    unknown = s.scalar(select(func.count()).where(Delivery.status == DeliveryStatus.UNKNOWN)) or 0
    failed = (
        s.scalar(
            select(func.count()).where(
                Delivery.status == DeliveryStatus.FAILED, Delivery.due_at > now - dt.timedelta(days=1)
            )
        )
        or 0
    )
    low = [p for p in coupons.status(s, now) if p.low]
    return Attention(int(unknown), int(failed), problems, low)


def overview(
    sessions: sessionmaker[Session], catalog: Catalog | None, now: dt.datetime, problems: list[str]
) -> Overview:
    converted = conversions(sessions, catalog, now)
    with sessions() as s:
        shown, day = trends(s, now)
        return Overview(shown, day, kpis(s, now), converted, messages(s, now), attention(s, now, problems))
