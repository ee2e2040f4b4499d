"""Two writers create one new customer at once on PostgreSQL: neither overwrites what the other stored.

Before, a batch that read no row for a customer staged it as new with no traits;
when another transaction had created the customer meanwhile (an identify from the
tracking API, say), the upsert overwrote that row with the empty one: the email,
the name and the consent were lost.
"""

from __future__ import annotations

import json
import threading
import time

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from automation.core.records import parse_record
from automation.ingest.applying import Applying
from automation.ingest.load import apply_batch
from automation.store.models import Customer, CustomerEventStat
from tests.harness import identify, track, utc

NOW = utc("2026-11-22T12:00:00Z")


def _records(*records: dict[str, object]) -> list:
    return [parse_record(json.dumps(r), NOW) for r in records]


def _waiting_for_a_lock(engine: Engine, deadline_s: float = 60.0) -> bool:
    """Whether another connection is blocked on a row lock (observed, not slept for)."""
    deadline = time.monotonic() + deadline_s
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            found = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            conn.rollback()
            if found:
                return True
    return False


def test_an_order_for_a_customer_created_meanwhile_keeps_the_customer(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    applying = Applying(NOW, "order_placed", how="api")
    first = sessions()
    first.begin()
    apply_batch(first, _records(identify("ada", "2026-11-22T11:00:00Z", email="ada@example.com",
                                         first_name="Ada", email_opt_in=True)), applying)  # fmt: skip
    outcome: dict[str, object] = {}

    def second_writer() -> None:
        with sessions.begin() as second:
            outcome["new_events"] = apply_batch(
                second,
                _records(track("ada", "order_placed", "2026-11-22T11:30:00Z", "o-1", total=42)),
                applying,
            )

    writer = threading.Thread(target=second_writer)
    writer.start()
    assert _waiting_for_a_lock(engine)  # the second batch read no row, and waits on the first's insert
    first.commit()
    first.close()
    writer.join(60)
    assert not writer.is_alive() and outcome["new_events"] == 1
    with sessions() as s:
        ada = s.get(Customer, "ada")
        assert ada is not None
        assert (ada.email, ada.first_name, ada.email_opt_in) == ("ada@example.com", "Ada", True)
        assert (ada.order_count, float(ada.lifetime_value)) == (1, 42.0)


def test_page_views_neither_wait_for_nor_write_their_known_customers(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """Tracks that need no customer row (no order, none the programme takes) lock no customer.

    Another transaction holds Ada's row; the batch of page views for her and for a new
    customer commits without waiting for it (a lock wait would hit the lock timeout), adds the
    events and statistics, creates Bo as an empty row and leaves Ada's row as it was.
    """
    applying = Applying(NOW, "order_placed", how="api")
    with sessions.begin() as s:
        apply_batch(s, _records(identify("ada", "2026-11-22T10:00:00Z", first_name="Ada")), applying)
    with sessions() as s:
        before = s.get(Customer, "ada")
        assert before is not None
        ada_row = (before.first_name, before.traits, before.updated_at)
    holder = sessions()
    holder.begin()
    holder.execute(text("SELECT 1 FROM customers WHERE id = 'ada' FOR UPDATE"))
    try:
        with sessions.begin() as s:
            s.execute(text("SET LOCAL lock_timeout = '2s'"))
            views = [
                track("ada", "page_viewed", "2026-11-22T11:00:00Z", "v-1", path="/"),
                track("bo", "page_viewed", "2026-11-22T11:01:00Z", "v-2", path="/"),
                track("ada", "page_viewed", "2026-11-22T11:02:00Z", "v-3", path="/menu"),
            ]
            assert apply_batch(s, _records(*views), applying) == 3
    finally:
        holder.rollback()
        holder.close()
    with sessions() as s:
        ada, bo = s.get(Customer, "ada"), s.get(Customer, "bo")
        assert ada is not None and (ada.first_name, ada.traits, ada.updated_at) == ada_row
        assert bo is not None and (bo.traits, bo.trait_times, bo.order_count, bo.email_opt_in) == (
            {},
            {},
            0,
            False,
        )
        stat = s.get(CustomerEventStat, ("ada", "page_viewed"))
        assert stat is not None and stat.count == 2


def test_a_page_view_for_a_customer_created_meanwhile_keeps_the_customer(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """The page view's empty row for a customer it did not find never replaces the identify's."""
    applying = Applying(NOW, "order_placed", how="api")
    first = sessions()
    first.begin()
    apply_batch(first, _records(identify("ada", "2026-11-22T11:00:00Z", email="ada@example.com",
                                         first_name="Ada")), applying)  # fmt: skip
    outcome: dict[str, object] = {}

    def second_writer() -> None:
        with sessions.begin() as second:
            view = track("ada", "page_viewed", "2026-11-22T11:30:00Z", "v-1", path="/")
            outcome["new_events"] = apply_batch(second, _records(view), applying)

    writer = threading.Thread(target=second_writer)
    writer.start()
    assert _waiting_for_a_lock(engine)  # the page view's insert of Ada waits on the identify's
    first.commit()
    first.close()
    writer.join(60)
    assert not writer.is_alive() and outcome["new_events"] == 1
    with sessions() as s:
        ada = s.get(Customer, "ada")
        assert ada is not None and (ada.email, ada.first_name) == ("ada@example.com", "Ada")
        stat = s.get(CustomerEventStat, ("ada", "page_viewed"))
        assert stat is not None and stat.count == 1
