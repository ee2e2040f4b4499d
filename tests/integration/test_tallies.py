"""The ledger's tallies agree with a scan of the ledger after every kind of write, on both databases."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import and_, delete, func, select, text, true, update
from sqlalchemy.orm import Session, sessionmaker

from automation.core.statuses import DeliveryStatus
from automation.insight import reporting
from automation.insight.reporting import FEEDBACK, delivery_counts
from automation.store import db, tallies
from automation.store.models import Delivery, DeliveryTally, Enrollment, ProviderEvent
from tests.harness import utc

T0 = utc("2026-11-01T00:00:00Z")


def _delivery(did: int, step: str, due: dt.datetime, enrollment: int | None = None, **kw: Any) -> Delivery:
    return Delivery(
        id=did,
        enrollment_id=enrollment or did,
        step_id=step,
        journey_id="post_purchase_thanks" if did % 2 else "welcome_series",
        customer_id=f"c{did}",
        channel="email",
        template="t",
        transactional=False,
        status=DeliveryStatus.QUEUED,
        due_at=due,
        attempts=0,
        created_at=T0,
        updated_at=T0,
        **kw,
    )


def _scanned(s: Session, where: Any = None) -> dict[tuple[str, str], list[int]]:
    rows = s.execute(delivery_counts(Delivery.journey_id, true() if where is None else where))
    return {(jid, str(st)): list(counts) for jid, st, *counts in rows if counts[0]}


def _tallied(s: Session, **span: Any) -> dict[tuple[str, str], list[int]]:
    found = tallies.counted(s, tallies.DELIVERIES, ("journey_id", "status"), **span)
    names = ("n", "opened", "clicked", *FEEDBACK)
    return {key: [c[name] for name in names] for key, c in found.items() if c["n"]}


def _scanned_reach(s: Session) -> dict[str, list[int]]:
    """Per journey, the distinct enrollments at each stage as the dashboard's funnel once scanned them."""
    per = func.count(func.distinct(Delivery.enrollment_id))
    sent = Delivery.status == DeliveryStatus.SENT
    rows = s.execute(
        select(
            Delivery.journey_id,
            per.filter(sent),
            per.filter(sent, Delivery.provider_status == "delivered"),
            per.filter(sent, Delivery.opened_at.is_not(None)),
            per.filter(sent, Delivery.clicked_at.is_not(None)),
        ).group_by(Delivery.journey_id)
    )
    return {jid: list(counts) for jid, *counts in rows if any(counts)}


def _reached(s: Session) -> dict[str, list[int]]:
    tallies.fold_reach(s)  # what every reader does first
    stages = ("sent", "delivered", "opened", "clicked")
    found = {jid: [c[stage] for stage in stages] for jid, c in reporting.reached(s).items()}
    return {jid: counts for jid, counts in found.items() if any(counts)}


def _write(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        s.add_all(
            Enrollment(
                id=i,
                journey_id="x",
                customer_id=f"c{i}",
                occurrence_key="k",
                occurred_at=T0,
                entered_at=T0,
                state="completed",
                context={},
            )
            for i in range(1, 9)
        )
        s.flush()
        s.add_all(_delivery(i, f"s{i % 3}", T0 + dt.timedelta(hours=7 * i)) for i in range(1, 9))
    with sessions.begin() as s:
        s.execute(update(Delivery).where(Delivery.id <= 6).values(status=DeliveryStatus.CLAIMED))
        s.execute(update(Delivery).where(Delivery.id <= 5).values(status=DeliveryStatus.SENT, sent_at=T0))
        s.execute(update(Delivery).where(Delivery.id == 6).values(enqueued_at=T0))  # moves no count
    with sessions.begin() as s:
        d = s.get_one(Delivery, 1)
        d.provider_status, d.opened_at = "delivered", T0
        s.get_one(Delivery, 2).provider_status = "bounced"
        s.get_one(Delivery, 3).clicked_at = T0
        s.get_one(Delivery, 4).unsubscribed_at = T0
        s.get_one(Delivery, 7).due_at = T0 + dt.timedelta(days=5)  # deferred into another day
        s.get_one(Delivery, 7).status = DeliveryStatus.DEFERRED
    with sessions.begin() as s:
        s.execute(delete(Delivery).where(Delivery.id == 8))


def test_the_tallies_follow_every_insert_update_and_delete_of_the_ledger(
    either_database: sessionmaker[Session],
) -> None:
    _write(either_database)
    with either_database() as s:
        assert _tallied(s) == _scanned(s)
        assert _tallied(s)[("post_purchase_thanks", "sent")] == [3, 1, 1, 2, 0, 0, 0]


def test_the_funnel_counts_the_enrollments_a_scan_of_the_ledger_counts_after_every_kind_of_write(
    either_database: sessionmaker[Session],
) -> None:
    _write(either_database)
    with either_database() as s:
        assert (
            _reached(s)
            == _scanned_reach(s)
            == {"post_purchase_thanks": [3, 1, 1, 1], "welcome_series": [2, 0, 0, 0]}
        )
    with either_database.begin() as s:  # a second message of enrollment 1, then its first one failed
        s.add(_delivery(9, "s9", T0, 1, opened_at=T0))
    with either_database.begin() as s:
        s.get_one(Delivery, 9).status = DeliveryStatus.SENT
        s.get_one(Delivery, 1).status = DeliveryStatus.FAILED
    with either_database() as s:
        assert _reached(s) == _scanned_reach(s)
        assert _reached(s)["post_purchase_thanks"] == [3, 0, 1, 1]
    with either_database.begin() as s:
        s.execute(delete(Delivery).where(Delivery.id == 9))
        s.execute(update(Delivery).where(Delivery.id == 3).values(journey_id="welcome_series"))
    with either_database.begin() as s:
        tallies.compact(s)
    with either_database() as s:
        assert (
            _reached(s)
            == _scanned_reach(s)
            == {"post_purchase_thanks": [1, 0, 0, 0], "welcome_series": [3, 0, 0, 1]}
        )


def test_entered_enrollments_are_counted_by_journey_state_and_range_as_a_scan_counts_them(
    either_database: sessionmaker[Session],
) -> None:
    with either_database.begin() as s:
        s.add_all(
            Enrollment(
                id=i,
                journey_id=("a", "b")[i % 2],
                customer_id=f"c{i}",
                occurrence_key="k",
                occurred_at=T0,
                entered_at=T0 + dt.timedelta(hours=5 * i),
                state=("active", "completed", "exited")[i % 3],
                context={},
            )
            for i in range(1, 21)
        )
    with either_database.begin() as s:
        s.execute(update(Enrollment).where(Enrollment.id <= 6).values(state="completed"))
        s.execute(delete(Enrollment).where(Enrollment.id == 7))
        s.get_one(Enrollment, 8).entered_at = T0 + dt.timedelta(days=9)
    ranges = [(None, None), (T0 + dt.timedelta(hours=13), T0 + dt.timedelta(hours=61)), (T0, None)]
    with either_database() as s:
        for since, until in ranges:
            for state in (None, "active", "completed"):
                match = {} if state is None else {"state": state}
                within = and_(
                    true() if since is None else Enrollment.entered_at >= since,
                    true() if until is None else Enrollment.entered_at < until,
                    *(Enrollment.state == v for v in match.values()),
                )
                scanned = dict(
                    s.execute(
                        select(Enrollment.journey_id, func.count())
                        .where(within)
                        .group_by(Enrollment.journey_id)
                    ).all()
                )
                assert reporting.enrolled(s, since, until, **match) == scanned, (since, until, state)
        assert reporting.enrolled(s) == {"a": 10, "b": 9}


def test_compacting_keeps_every_sum_and_leaves_one_row_per_key(
    either_database: sessionmaker[Session],
) -> None:
    _write(either_database)
    with either_database() as s:
        before = _tallied(s)
    with either_database.begin() as s:
        tallies.compact(s)
    with either_database.begin() as s:
        s.get_one(Delivery, 5).opened_at = T0  # a change after the fold, then a second fold
    with either_database.begin() as s:
        tallies.compact(s)
    with either_database() as s:
        assert _tallied(s) == _scanned(s)
        assert _tallied(s)[("post_purchase_thanks", "sent")] == [
            c + (i in (1, 3)) for i, c in enumerate(before[("post_purchase_thanks", "sent")])
        ]
        rows = s.scalar(select(func.count()).select_from(DeliveryTally))
        keys = s.scalar(
            select(func.count()).select_from(
                select(
                    DeliveryTally.journey_id, DeliveryTally.step_id, DeliveryTally.status, DeliveryTally.day
                )
                .distinct()
                .subquery()
            )
        )
        assert rows == keys


def test_a_range_that_ends_inside_a_day_counts_exactly_what_a_scan_of_that_range_counts(
    either_database: sessionmaker[Session],
) -> None:
    _write(either_database)
    since, until = T0 + dt.timedelta(hours=10), T0 + dt.timedelta(hours=40)
    with either_database() as s:
        within = (Delivery.due_at >= since) & (Delivery.due_at < until)
        days, less = tallies.span(Delivery.due_at, since, until)
        assert _tallied(s, days=days, less=less) == _scanned(s, within)
        assert _scanned(s, within)


def test_provider_events_are_tallied_by_day_and_type(either_database: sessionmaker[Session]) -> None:
    with either_database.begin() as s:
        s.add_all(
            ProviderEvent(
                provider="sendgrid",
                event_key=f"e{i}",
                delivery_id=i,
                event_type="open" if i % 2 else "delivered",
                occurred_at=T0 + dt.timedelta(hours=10 * i),
                payload={},
                received_at=T0,
            )
            for i in range(5)
        )
    with either_database() as s:
        found = tallies.counted(s, tallies.PROVIDER_EVENTS, ("day", "event_type"))
    assert {k: c["n"] for k, c in found.items()} == {
        ("2026-11-01", "delivered"): 2,
        ("2026-11-01", "open"): 1,
        ("2026-11-02", "delivered"): 1,
        ("2026-11-02", "open"): 1,
    }


def test_the_migration_tallies_the_ledger_written_before_it_and_its_downgrade_removes_the_triggers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    for url in (request.getfixturevalue("empty_pg_url"), f"sqlite:///{tmp_path}/old.db"):
        engine = db.make_engine(url)
        cfg = db.alembic_config(engine)
        command.upgrade(cfg, "waitfor")
        sessions = db.sessions(engine)
        _write(sessions)
        command.upgrade(cfg, "head")
        with sessions() as s:
            assert _tallied(s) == _scanned(s) != {}
            assert _reached(s) == _scanned_reach(s) != {}
            assert reporting.enrolled(s) == {"x": 8}
        command.downgrade(cfg, "waitfor")
        with sessions.begin() as s:
            s.execute(delete(Delivery))  # no trigger left to write to a dropped table
            s.execute(delete(Enrollment))
        engine.dispose()


def test_a_truncated_ledger_leaves_no_counts_on_postgresql(pg_url: str) -> None:
    engine = db.make_engine(pg_url)
    sessions = db.sessions(engine)
    _write(sessions)
    with sessions.begin() as s:
        s.execute(text("TRUNCATE deliveries"))
    with sessions() as s:
        assert _tallied(s) == {}
        assert _reached(s) == {}
    engine.dispose()
