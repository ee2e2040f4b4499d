"""An experiment's entrants and reach per arm, summed from the tallies and corrected for retries, equal
what a direct count of distinct entrants over the ledger says, on both databases."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from automation.core import assignment
from automation.core.statuses import DeliveryStatus
from automation.insight import experiments
from automation.store.models import Delivery, Enrollment
from tests.harness import utc

T0 = utc("2026-11-01T00:00:00Z")
ARMS = ("warm", "recap", None, assignment.GLOBAL_CONTROL)
STATUSES = (DeliveryStatus.SENT, DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.HELD_OUT)


def _direct(rows: Sequence[Delivery]) -> dict[str | None, list[int]]:
    """Per arm: first deliveries, then distinct enrollments sent, delivered, opened, clicked."""
    out: dict[str | None, list[int]] = {}
    for arm in {d.arm for d in rows}:
        mine = [d for d in rows if d.arm == arm]
        sent = [d for d in mine if d.status == DeliveryStatus.SENT]
        reached = [d for d in sent if d.provider_status == "delivered" or d.opened_at or d.clicked_at]
        out[arm] = [
            sum(d.retry_of is None for d in mine),
            *(
                len({d.enrollment_id for d in group})
                for group in (
                    sent,
                    reached,
                    [d for d in mine if d.opened_at],
                    [d for d in mine if d.clicked_at],
                )
            ),
        ]
    return out


def _delivery(did: int, eid: int, rng: random.Random, arm: str | None, retry_of: int | None) -> Delivery:
    seen = rng.random()
    return Delivery(
        id=did,
        enrollment_id=eid,
        step_id="a",
        journey_id="ab",
        customer_id=f"c{eid}",
        channel="email",
        template="t",
        transactional=False,
        arm=arm,
        status=rng.choice(STATUSES),
        provider_status=rng.choice(("delivered", "bounced", None)),
        opened_at=T0 if seen < 0.4 else None,
        clicked_at=T0 if seen < 0.15 else None,
        due_at=T0 + dt.timedelta(hours=did),
        attempts=1,
        retry_of=retry_of,
        created_at=T0,
        updated_at=T0,
    )


@pytest.mark.parametrize("seed", [5, 8])
def test_the_reach_per_arm_counts_each_entrant_once_however_many_retries(
    either_database: sessionmaker[Session], seed: int
) -> None:
    rng = random.Random(seed)
    with either_database.begin() as s:
        s.add_all(
            Enrollment(
                id=eid,
                journey_id="ab",
                customer_id=f"c{eid}",
                occurrence_key="k",
                occurred_at=T0,
                entered_at=T0,
                state="completed",
                context={},
            )
            for eid in range(1, 61)
        )
        s.flush()
        did = 0
        for eid in range(1, 61):
            arm = rng.choice(ARMS)
            did += 1
            s.add(_delivery(did, eid, rng, arm, None))
            for _ in range(rng.choice((0, 0, 1, 2))):  # a retry of the last row, in the same arm or not
                s.flush()
                did += 1
                s.add(_delivery(did, eid, rng, arm if rng.random() < 0.8 else rng.choice(ARMS), did - 1))
        other = _delivery(1000, 1, rng, "warm", None)  # another step of the same enrollment: not counted
        other.step_id = "b"
        s.add(other)
    with either_database() as s:
        rows = list(s.scalars(select(Delivery).where(Delivery.step_id == "a")))
        assert sum(d.retry_of is not None for d in rows) >= 10
        assert experiments._reach(s, "ab", "a") == _direct(rows)
