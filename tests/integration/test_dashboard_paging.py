"""Keyset paging of the dashboard's newest-first lists: every row once, in order, ties included."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session, sessionmaker

from automation.core.statuses import Channel
from automation.store.models import Suppression
from automation.web.dashboard.suppression_list import search

T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def test_paging_the_suppression_list_shows_each_row_once_newest_first_with_tied_instants(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as s:
        for n, minutes in enumerate([0, 5, 5, 5, 9]):
            s.add(
                Suppression(
                    channel=Channel.EMAIL,
                    address=f"p{n}@example.com",
                    reason="unsubscribed",
                    created_at=T0 + dt.timedelta(minutes=minutes),
                )
            )
    seen: list[str] = []
    after: str | None = None
    with sessions() as s:
        while True:
            page = search(s, None, after, size=2)
            seen += [r.address for r in page.rows]
            if page.next is None:
                break
            after = page.next
    assert seen == ["p4@example.com", "p3@example.com", "p2@example.com", "p1@example.com", "p0@example.com"]
