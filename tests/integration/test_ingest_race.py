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
from automation.store.models import Customer
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
