"""Two workers recording the last two messages of one enrollment at once: the enrollment completes.

Each worker's transaction marks its delivery sent, then settles. Without a lock the second one's
check would still see the first one's delivery as sending (not yet committed) and the first one's
check the second's, so neither would complete the enrollment before the tick's sweep.
"""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from automation.advance.batch import settle
from automation.core.statuses import DeliveryStatus, EnrollmentState
from automation.store.models import Delivery, Enrollment
from tests.deliverykit import wait_for

T0 = dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)


def _two_sending(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        s.add(
            Enrollment(
                id=1,
                journey_id="j",
                customer_id="c1",
                occurrence_key="k",
                occurred_at=T0,
                entered_at=T0,
                state=EnrollmentState.ACTIVE,
                context={},
            )
        )
        s.flush()
        for did, step in ((1, "a"), (2, "b")):
            s.add(
                Delivery(
                    id=did,
                    enrollment_id=1,
                    step_id=step,
                    journey_id="j",
                    customer_id="c1",
                    channel="email",
                    template="t",
                    status=DeliveryStatus.SENDING,
                    due_at=T0,
                    attempts=1,
                    created_at=T0,
                    updated_at=T0,
                )
            )


def _record(s: Session, delivery_id: int) -> None:
    s.execute(update(Delivery).where(Delivery.id == delivery_id).values(status=DeliveryStatus.SENT))
    settle(s, [delivery_id])


def test_the_enrollment_completes_when_its_last_two_messages_are_recorded_at_once(
    sessions: sessionmaker[Session],
) -> None:
    _two_sending(sessions)
    first = sessions()
    _record(first, 1)  # its transaction stays open: delivery 2 is still sending for it
    second_done = threading.Event()

    def second() -> None:
        with sessions.begin() as s:
            s.execute(text("SET LOCAL lock_timeout = '20s'"))
            _record(s, 2)
        second_done.set()

    worker = threading.Thread(target=second)
    worker.start()
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )

    def blocked() -> bool:
        with sessions() as probe:  # a transaction per look: pg_stat_activity is read once per transaction
            return probe.scalar(waiting) == 1

    # The second transaction waits for the first one's lock on the enrollment.
    assert wait_for(lambda: blocked() or second_done.is_set(), timeout=10)
    assert not second_done.is_set()
    first.commit()
    first.close()
    worker.join(timeout=30)
    assert second_done.is_set()
    with sessions() as s:
        assert s.scalar(select(Enrollment.state).where(Enrollment.id == 1)) == EnrollmentState.COMPLETED
