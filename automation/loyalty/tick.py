"""The programme's part of the tick: activate and expire lots, review tiers, at `now`.

Only accounts whose `next_at` (their next activation, expiry or tier review) has
come are read, a page at a time, each page in its own transaction. Replaying a
tick changes nothing: each transaction's key is derived from its lot and date.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from automation.core.earning import BIRTHDAY_EVENT, birthday_on
from automation.core.programme import Programme
from automation.core.records import Track
from automation.loyalty.accounts import load, save
from automation.loyalty.events import Outcome, apply_tracks, retier, write_outcome
from automation.store.models import Customer, Event, LoyaltyAccount

PAGE = 2000


def _page(session: Session, now: dt.datetime, after: str) -> list[tuple[str, str | None]]:
    query = (
        select(LoyaltyAccount.customer_id, Customer.timezone)
        .join(Customer, Customer.id == LoyaltyAccount.customer_id, isouter=True)
        .where(LoyaltyAccount.next_at <= now, LoyaltyAccount.customer_id > after)
        .order_by(LoyaltyAccount.customer_id)
        .limit(PAGE)
    )
    return [(cid, zone) for cid, zone in session.execute(query).all()]


def _birthdays(session: Session, now: dt.datetime) -> tuple[list[Track], dict[str, str | None]]:
    """A birthday event for each customer whose local day at `now` is their birthday."""
    days = {(now + dt.timedelta(hours=h)).date() for h in (-14, 0, 14)}
    mds = {d.month * 100 + d.day for d in days} | (
        {229} if any(d.month == 2 and d.day == 28 for d in days) else set()
    )
    rows = session.execute(
        select(Customer.id, Customer.timezone, Customer.birthday).where(Customer.birthday_md.in_(mds))
    ).all()
    out, zones = [], {}
    for cid, zone, birthday in rows:
        tz = ZoneInfo(zone or "UTC")
        day = now.astimezone(tz).date()
        if birthday is not None and birthday_on(birthday, day):
            midnight = dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)
            out.append(Track(cid, BIRTHDAY_EVENT, f"birthday:{cid}:{day.year}", midnight))
            zones[cid] = zone
    return out, zones


def birthday_points(sessions: sessionmaker[Session], programme: Programme | None, now: dt.datetime) -> int:
    """Record the birthday events of `now` and their points, once a year; returns how many were new."""
    if programme is None or programme.points is None or not programme.points.birthday_points():
        return 0
    with sessions.begin() as session:
        tracks, zones = _birthdays(session, now)
        given = set(
            session.scalars(select(Event.event_key).where(Event.event_key.in_([t.event_key for t in tracks])))
        )
        tracks = [t for t in tracks if t.event_key not in given]
        if not tracks:
            return 0
        out = apply_tracks(session, programme, tracks, zones, now)
        out.events += tracks
        write_outcome(session, out, now)
    return len(tracks)


def advance_accounts(sessions: sessionmaker[Session], programme: Programme | None, now: dt.datetime) -> int:
    """Bring every account with work due to `now`; returns how many accounts were brought."""
    if programme is None or programme.points is None:
        return 0
    done, after = 0, ""
    while True:
        with sessions.begin() as session:
            page = _page(session, now, after)
            if not page:
                return done
            accounts = load(session, dict(page))
            out = Outcome()
            for account in accounts.values():
                account.txns += account.ledger.advance(now)
                retier(programme, account, now, out)
            save(session, accounts.values(), now)
            write_outcome(session, out, now)
        done += len(page)
        after = page[-1][0]
