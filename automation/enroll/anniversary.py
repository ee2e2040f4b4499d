"""Trigger kind `anniversary`: the yearly return of a date trait, at a local time in the customer's zone.

An indexed lookup by month-and-day and zone reads, for each zone customers are
in (a skip scan of the zone index), only the days whose moment there falls in the look-back at
`now`; the pure planner then makes the exact call in each customer's zone
(Feb 29, DST, the look-back). The occurrence key is the
year. Templates get `years` and `anniversary`. There is no set-based form: the
due instant depends on each customer's zone.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy import Select, false, func, literal, or_, select
from sqlalchemy.orm import Session

from automation.core import entry, planner
from automation.core.journeys import AnniversaryTrigger, Journey
from automation.core.records import parse_date
from automation.enroll import policy
from automation.enroll.kind import Candidate, Found, Scope, TriggerKind
from automation.errors import UserError
from automation.store import skipscan
from automation.store.filter_sql import compile_filter
from automation.store.models import Customer
from automation.store.sqlutil import utc_time_of_day

#: Date traits with columns of their own (and month*100+day index columns).
COLUMNS = ("signed_up_at", "birthday")


def origin_date(origin: Any, tz: ZoneInfo) -> dt.date | None:
    """The local calendar date of a date trait (a timestamp is read in the customer's zone)."""
    if isinstance(origin, dt.datetime):
        return origin.astimezone(tz).date()
    if isinstance(origin, dt.date):
        return origin
    try:
        return parse_date(origin, "date trait")
    except ValueError:
        return None


def _origin(customer: Customer, trait: str) -> Any:
    if trait in COLUMNS:
        return getattr(customer, trait)
    return (customer.traits or {}).get(trait)


def _origin_column(trait: str) -> Any:
    if trait == "signed_up_at":
        return Customer.signed_up_at
    if trait == "birthday":
        return Customer.birthday
    return Customer.traits[trait].as_string()


def _on_days(trait: str, days: frozenset[int]) -> Any:
    """The trait's month-day (month*100+day, or a custom trait's "MM-DD") among `days` (indexed)."""
    if trait == "signed_up_at":
        return Customer.signed_up_md.in_(sorted(days))
    if trait == "birthday":
        return Customer.birthday_md.in_(sorted(days))
    return func.substr(_origin_column(trait), 6, 5).in_(
        [f"{d // 100:02d}-{d % 100:02d}" for d in sorted(days)]
    )


#: What one zone's customers are read by: the month-days due there, and for a timestamp stored in
#: UTC the neighbouring UTC days with the UTC time of day from which (or before which) they are local ones.
Reads = tuple[frozenset[int], tuple[tuple[frozenset[int], str, str], ...]]
DAY = dt.timedelta(days=1)


def _clock(span: dt.timedelta) -> str:
    """A span within a day as the "HH:MM:SS" a UTC time of day is compared with."""
    seconds = int(min(max(span, dt.timedelta()), DAY - dt.timedelta(seconds=1)).total_seconds())
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _reads(trig: AnniversaryTrigger, tz: ZoneInfo, now: dt.datetime) -> Reads:
    days = planner.anniversary_days(trig.at, tz, now, trig.lookback)
    if trig.trait != "signed_up_at" or not days:
        return days, ()
    least, greatest = planner.offset_bounds(tz)
    near = []
    if greatest > dt.timedelta():
        # UTC the day before: local the next day from 24h - offset on.
        near.append(
            (planner.anniversary_days(trig.at, tz, now, trig.lookback, -1), _clock(DAY - greatest), "24")
        )
    if least < dt.timedelta():
        # UTC the day after: still the local day before -offset.
        near.append((planner.anniversary_days(trig.at, tz, now, trig.lookback, 1), "00", _clock(-least)))
    return days, tuple(near)


def _on(trait: str, reads: Reads, tod: Any) -> Any:
    """The customers of one zone whose month-day (and UTC time of day, for a timestamp) `reads` lists."""
    days, near = reads
    if not days:
        return false()
    return or_(
        _on_days(trait, days),
        *(_on_days(trait, other) & (tod >= start) & (tod < end) for other, start, end in near),
    )


def _in_zones(names: list[str | None]) -> Any:
    """Customers in these zones (None: those without one)."""
    named = [n for n in names if n is not None]
    cond = Customer.timezone.in_(named) if named else false()
    return or_(cond, Customer.timezone.is_(None)) if None in names else cond


class AnniversaryKind(TriggerKind[AnniversaryTrigger]):
    name = "anniversary"
    model = AnniversaryTrigger
    defaults: ClassVar[dict[str, Any]] = {"years": 0, "anniversary": ""}

    def occasion_day(self, context: dict[str, Any]) -> dt.date | None:
        day = context.get("anniversary")
        return dt.date.fromisoformat(day) if isinstance(day, str) and day else None

    def statement(self, session: Session, journey: Journey, now: dt.datetime, scope: Scope) -> Select[Any]:
        """Customers whose anniversary may be due at `now` (audience applied): (id, origin, timezone)."""
        trig = self.settings(journey)
        zones: dict[Any, list[str | None]] = defaultdict(list)
        for name in [None, *skipscan.distinct(session, Customer.__table__.c.timezone)]:
            zones[_reads(trig, planner.zone(name, scope.default_tz), now)].append(name)
        tod = utc_time_of_day(session, Customer.signed_up_at)
        match = or_(
            false(), *(_on(trig.trait, reads, tod) & _in_zones(names) for reads, names in zones.items())
        )
        stmt = select(Customer.id, _origin_column(trig.trait), Customer.timezone).where(
            match, compile_filter(journey.audience)
        )
        # Outside the days around New Year only one occurrence key is possible: leave out in SQL
        # those who already have it, so an idle tick reads few rows.
        keys = {entry.occurrence_key(journey, str(y)) for y in planner.anniversary_years(now, trig.lookback)}
        if len(keys) == 1:
            stmt = stmt.where(policy.not_enrolled(journey, Customer.id, literal(keys.pop()), per_row=True))
        return stmt

    def candidates(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope
    ) -> Iterable[Candidate]:
        trig = self.settings(journey)
        for cid, origin, tz_name in session.execute(self.statement(session, journey, now, scope)):
            tz = planner.zone(tz_name, scope.default_tz)
            day = origin_date(origin, tz)
            occ = planner.anniversary_due(trig, day, tz, now) if day is not None else None
            if occ is not None:
                yield Candidate(cid, occ.key, occ.occurred_at, occ.context)

    def latest(
        self, session: Session, journey: Journey, customer: Customer, now: dt.datetime, scope: Scope
    ) -> Found:
        trig = self.settings(journey)
        tz = planner.zone(customer.timezone, scope.default_tz)
        day = origin_date(_origin(customer, trig.trait), tz)
        if day is None:
            return Found(None, f"trigger not met: the customer has no date in trait {trig.trait!r}")
        last = planner.last_anniversary(day, trig.at, tz, now)
        if last is None or last.context["years"] < trig.first_year():
            nxt = planner.next_anniversary(day, trig.at, tz, now)
            return Found(
                None,
                f"trigger not met: the next {trig.trait} anniversary is at {nxt.occurred_at.isoformat()} "
                f"({tz.key} {trig.at:%H:%M}, years {nxt.context['years']}); min_years is {trig.first_year()}",
            )
        return Found(last)

    def preview_context(
        self, session: Session, journey: Journey, customer: Customer, now: dt.datetime, scope: Scope
    ) -> dict[str, Any]:
        """The anniversary due now, else the next one."""
        trig = self.settings(journey)
        tz = planner.zone(customer.timezone, scope.default_tz)
        day = origin_date(_origin(customer, trig.trait), tz)
        if day is None:
            raise UserError(f"customer {customer.id!r} has no date in trait {trig.trait!r} to preview with")
        due = planner.anniversary_due(trig, day, tz, now)
        return (due or planner.next_anniversary(day, trig.at, tz, now)).context


KIND = AnniversaryKind()
