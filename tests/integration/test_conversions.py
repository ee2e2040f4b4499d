"""The conversion ledger holds exactly what the rule computed directly says, after every kind of change.

A random ledger and random events on both databases; after each round of changes (sends,
deferrals, retries, deletions, new and erased events, a changed goal) and a fold, the ledger's
rows equal a direct computation in Python of which deliveries converted and which anchored.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from automation.core.journeys import Goal
from automation.core.statuses import DeliveryStatus
from automation.insight import reporting
from automation.store import conversions, tallies
from automation.store.models import Conversion, ConversionQueue, Delivery, Enrollment, Event
from tests.harness import utc

T0 = utc("2026-11-01T00:00:00Z")
JOURNEYS = ("thanks", "welcome", "nogoal")
STATUSES = (DeliveryStatus.SENT, DeliveryStatus.SENT, DeliveryStatus.QUEUED, DeliveryStatus.SKIPPED)
CUSTOMERS = [f"c{i}" for i in range(12)]
RANGES = ((None, None), (T0 + dt.timedelta(days=3), T0 + dt.timedelta(days=12)))


def _minutes(rng: random.Random, parity: int) -> dt.datetime:
    """An instant in the first 20 days; deliveries on even minutes, events on odd ones, so that no
    event falls exactly on a window's edge (SQLite's and PostgreSQL's edges differ by their text)."""
    return T0 + dt.timedelta(minutes=2 * rng.randrange(20 * 720) + parity)


def _direct(
    deliveries: Iterable[Delivery], events: Iterable[Event], goals: Mapping[str, Goal]
) -> dict[int, tuple[bool, bool, float | None]]:
    """Per delivery a goal event followed: converted (after its send), anchored (after its step), revenue."""
    by_customer: dict[str, list[Event]] = {}
    for e in events:
        by_customer.setdefault(e.customer_id, []).append(e)
    out = {}
    for d in deliveries:
        goal = goals.get(d.journey_id)
        if goal is None:
            continue
        anchor = d.first_due_at or d.due_at
        mine = [e for e in by_customer.get(d.customer_id, []) if e.name == goal.event]
        sent = [
            e
            for e in mine
            if d.status == DeliveryStatus.SENT and d.due_at < e.occurred_at <= d.due_at + goal.within
        ]
        step = [e for e in mine if d.retry_of is None and anchor < e.occurred_at <= anchor + goal.within]
        if sent or step:
            totals = [e.properties["total"] for e in step if "total" in e.properties]
            out[d.id] = (bool(sent), bool(step), sum(totals) if totals else None)
    return out


def _ledger(s: Session) -> dict[int, tuple[bool, bool, float | None]]:
    rows = s.execute(
        select(Conversion.delivery_id, Conversion.converted, Conversion.anchored, Conversion.revenue)
    )
    return {did: (bool(c), bool(a), None if r is None else round(r, 6)) for did, c, a, r in rows}


def _check(sessions: sessionmaker[Session], goals: Mapping[str, Goal]) -> dict[int, Any]:
    with sessions.begin() as s:
        conversions.fold(s, goals)
        tallies.fold_reach(s)
    with sessions() as s:
        found = list(s.scalars(select(Delivery)))
        direct = _direct(found, s.scalars(select(Event)), goals)
        expected = {k: (c, a, None if r is None else round(r, 6)) for k, (c, a, r) in direct.items()}
        assert _ledger(s) == expected
        for since, until in RANGES:  # what `automation status` counts: converted enrollments
            for jid in goals:
                converted = {
                    d.enrollment_id
                    for d in found
                    if d.journey_id == jid
                    and direct.get(d.id, (False,))[0]
                    and (since is None or d.due_at >= since)
                    and (until is None or d.due_at < until)
                }
                assert reporting._conversions(s, jid, since, until) == len(converted)
        sent = {
            jid: len(
                {d.enrollment_id for d in found if d.journey_id == jid and d.status == DeliveryStatus.SENT}
            )
            for jid in JOURNEYS
        }
        reached = reporting.reached(s)
        assert {jid: reached.get(jid, {}).get("sent", 0) for jid in JOURNEYS} == sent
    return expected


def _seed(sessions: sessionmaker[Session], rng: random.Random) -> None:
    with sessions.begin() as s:
        for i in range(1, 41):
            cid = rng.choice(CUSTOMERS)
            s.add(
                Enrollment(
                    id=i,
                    journey_id=JOURNEYS[i % 3],
                    customer_id=cid,
                    occurrence_key=f"k{i}",
                    occurred_at=T0,
                    entered_at=T0,
                    state="completed",
                    context={},
                )
            )
        s.flush()
        did = 0
        for i in range(1, 41):
            e = s.get_one(Enrollment, i)
            for step in ("a", "b"):
                did += 1
                due = _minutes(rng, 0)
                deferred = rng.random() < 0.3
                s.add(
                    Delivery(
                        id=did,
                        enrollment_id=i,
                        step_id=step,
                        journey_id=e.journey_id,
                        customer_id=e.customer_id,
                        channel="email",
                        template="t",
                        transactional=False,
                        arm=rng.choice(("warm", "recap", None)),
                        status=rng.choice(STATUSES),
                        due_at=due + dt.timedelta(hours=6) if deferred else due,
                        first_due_at=due,
                        attempts=0,
                        created_at=T0,
                        updated_at=T0,
                    )
                )
        s.add_all(_event(rng, n) for n in range(60))


def _event(rng: random.Random, n: int) -> Event:
    name = rng.choice(("order_placed", "order_placed", "page_viewed"))
    props = {"total": rng.randrange(100, 10_000) / 100} if rng.random() < 0.8 else {}
    return Event(
        event_key=f"e{n}",
        customer_id=rng.choice(CUSTOMERS),
        name=name,
        occurred_at=_minutes(rng, 1),
        properties=props,
        received_at=T0,
    )


@pytest.mark.parametrize("seed", [3, 11])
def test_the_ledger_equals_the_direct_computation_after_every_kind_of_change(
    either_database: sessionmaker[Session], seed: int
) -> None:
    rng = random.Random(seed)
    goals = {
        "thanks": Goal(event="order_placed", within=dt.timedelta(days=5)),
        "welcome": Goal(event="order_placed", within=dt.timedelta(days=2)),
    }
    _seed(either_database, rng)
    first = _check(either_database, goals)
    assert any(c for c, _, _ in first.values()) and any(a and not c for c, a, _ in first.values())
    with either_database.begin() as s:  # sends, deferrals, a retry, a deletion
        for d in s.scalars(select(Delivery).where(Delivery.status == DeliveryStatus.QUEUED)):
            d.status = DeliveryStatus.SENT
        for d in s.scalars(select(Delivery).where(Delivery.id % 5 == 0)):
            d.due_at = d.due_at + dt.timedelta(days=1)
        old = s.get_one(Delivery, 2)
        s.add(
            Delivery(
                id=500,
                enrollment_id=old.enrollment_id,
                step_id=old.step_id,
                journey_id=old.journey_id,
                customer_id=old.customer_id,
                channel="email",
                template="t",
                transactional=False,
                status=DeliveryStatus.SENT,
                due_at=old.due_at + dt.timedelta(hours=2),
                attempts=0,
                retry_of=2,
                created_at=T0,
                updated_at=T0,
            )
        )
        s.execute(delete(Delivery).where(Delivery.id == 7))
    _check(either_database, goals)
    with either_database.begin() as s:  # orders arrive, some erased
        s.add_all(_event(rng, n) for n in range(100, 130))
        s.execute(delete(Event).where(Event.id % 7 == 0))
    _check(either_database, goals)
    with either_database.begin() as s:  # claimed and sending move no row; nothing is queued
        for d in s.scalars(select(Delivery).where(Delivery.status == DeliveryStatus.SKIPPED)):
            d.status = DeliveryStatus.CLAIMED
        s.flush()
        for d in s.scalars(select(Delivery).where(Delivery.status == DeliveryStatus.CLAIMED)):
            d.status = DeliveryStatus.SENDING
    with either_database() as s:
        assert s.scalar(select(func.count()).select_from(ConversionQueue)) == 0
    regoaled = {**goals, "welcome": Goal(event="order_placed", within=dt.timedelta(days=9))}
    _check(either_database, regoaled)
    del regoaled["thanks"]
    after = _check(either_database, regoaled)
    with either_database() as s:
        thanks = {d for (d,) in s.execute(select(Delivery.id).where(Delivery.journey_id == "thanks"))}
    assert not thanks & set(after)
