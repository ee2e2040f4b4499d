"""The programme's part of the tick: activate and expire lots, review tiers, at `now`.

Only accounts whose `next_at` (their next activation, expiry or tier review) has
come are read, a page at a time, each page in its own transaction. Replaying a
tick changes nothing: each transaction's key is derived from its lot and date.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from automation.core.programme import Programme
from automation.loyalty.accounts import load, save
from automation.loyalty.events import Outcome, retier, write_outcome
from automation.store.models import Customer, LoyaltyAccount

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
