"""The programme on ingest and the tick, on PostgreSQL and SQLite: earning, pending, multipliers,
redemptions refused per record, refunds, tiers, and re-ingest changing nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from automation.core.programme import Programme
from automation.definitions.catalog import load_catalog
from automation.definitions.loader import load_programme
from automation.ingest.load import IngestResult, ingest
from automation.loyalty.accounts import Account, load
from automation.loyalty.operations import differences
from automation.loyalty.replay import replay
from automation.loyalty.tick import advance_accounts, birthday_points
from automation.processes.tick import tick
from automation.store import db
from automation.store.erasure import forget
from automation.store.export import export
from automation.store.models import (
    Customer,
    Enrollment,
    Event,
    LoyaltyAccount,
    LoyaltyLot,
    LoyaltyTransaction,
)
from tests.harness import identify, track, utc

ROOT = Path(__file__).resolve().parents[2]
NOW = utc("2026-03-01T12:00:00Z")


@pytest.fixture(scope="module")
def programme() -> Programme:
    loaded, problems = load_programme(ROOT / "journeys")
    assert problems == [] and loaded is not None
    return loaded


@pytest.fixture(params=["postgresql", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "postgresql":
        yield request.getfixturevalue("sessions")
        return
    engine = db.make_engine(f"sqlite:///{tmp_path / 'lite.db'}")
    db.upgrade(engine)
    yield db.sessions(engine)
    engine.dispose()


def run(store: sessionmaker[Session], programme: Programme, *records: dict[str, Any]) -> IngestResult:
    return ingest([json.dumps(r) for r in records], "f.jsonl", store, NOW, programme=programme)


def account(store: sessionmaker[Session], cid: str) -> Account:
    with store() as s:
        return load(s, {cid: None})[cid]


def order(cid: str, oid: str, ts: str, total: float) -> dict[str, Any]:
    return track(cid, "order_placed", ts, oid, total=total, order_id=oid)


def test_order_points_are_pending_then_spendable_and_a_redemption_over_them_is_refused_per_record(
    store: sessionmaker[Session], programme: Programme
) -> None:
    first = run(
        store,
        programme,
        identify("c1", "2026-01-01T00:00:00Z", email="c1@example.com"),
        order("c1", "o-1", "2026-01-02T10:00:00Z", 120.9),
        track("c1", "points_redeemed", "2026-01-03T10:00:00Z", "r-1", points=50, reward="mug"),
        track("c1", "review_posted", "2026-01-03T11:00:00Z", "rv-1"),
        track("c1", "review_posted", "2026-01-03T12:00:00Z", "rv-2"),  # max_per_day: 1
    )
    assert first.rejected == ["f.jsonl:3: not enough points"]
    a = account(store, "c1")
    assert (a.ledger.pending(), a.ledger.spendable()) == (120, 50)
    advance_accounts(store, programme, utc("2026-01-16T10:00:00Z"))
    a = account(store, "c1")
    assert (a.ledger.pending(), a.ledger.spendable()) == (0, 170)
    again = run(
        store,
        programme,
        order("c1", "o-1", "2026-01-02T10:00:00Z", 120.9),
        track("c1", "points_redeemed", "2026-01-20T10:00:00Z", "r-2", points=100, reward="bag"),
    )
    assert again.rejected == []
    with store() as s:
        kinds = sorted(
            s.scalars(select(LoyaltyTransaction.kind).where(LoyaltyTransaction.customer_id == "c1"))
        )
    assert kinds == ["activate", "earn", "earn", "redeem"]
    # The whole file again: nothing changes.
    run(store, programme, order("c1", "o-1", "2026-01-02T10:00:00Z", 120.9))
    run(store, programme, track("c1", "points_redeemed", "2026-01-20T10:00:00Z", "r-2", points=100))
    assert account(store, "c1").ledger.spendable() == 70
    with store() as s:
        assert s.scalar(select(func.count()).select_from(LoyaltyTransaction)) == 4


def test_a_refund_after_a_redemption_leaves_a_debt_the_next_points_repay(
    store: sessionmaker[Session], programme: Programme
) -> None:
    run(
        store,
        programme,
        order("c2", "o-1", "2026-01-02T10:00:00Z", 100),
        track("c2", "review_posted", "2026-01-02T11:00:00Z", "rv-1"),
    )
    advance_accounts(store, programme, utc("2026-01-20T00:00:00Z"))
    run(store, programme, track("c2", "points_redeemed", "2026-01-21T10:00:00Z", "r-1", points=140))
    run(
        store,
        programme,
        track("c2", "order_refunded", "2026-01-22T10:00:00Z", "f-1", order_id="o-1", total=50),
    )
    assert account(store, "c2").ledger.spendable() == -40
    run(store, programme, track("c2", "review_posted", "2026-01-23T10:00:00Z", "rv-2"))
    a = account(store, "c2")
    assert (a.ledger.spendable(), a.ledger.debt) == (10, 0)


def test_spend_moves_the_tier_up_at_once_with_a_tier_changed_event_and_an_ingested_tier_is_ignored(
    store: sessionmaker[Session], programme: Programme
) -> None:
    result = run(
        store,
        programme,
        identify("c3", "2026-01-01T00:00:00Z", tier="platinum", email="c3@example.com"),
        order("c3", "o-1", "2026-01-02T10:00:00Z", 150),
        order("c3", "o-2", "2026-01-05T10:00:00Z", 100),
        order("c3", "o-3", "2026-01-09T10:00:00Z", 300),
    )
    assert result.warnings == [
        "f.jsonl:1: warning: tier is set by the loyalty programme (loyalty.yaml): the ingested tier is ignored"
    ]
    with store() as s:
        changes = [
            (e.properties["from"], e.properties["to"])
            for e in s.scalars(select(Event).where(Event.name == "tier_changed").order_by(Event.occurred_at))
        ]
        customer = s.get(Customer, "c3")
        assert customer is not None and customer.tier == "gold"
    assert changes == [("bronze", "silver"), ("silver", "gold")]
    # o-3 was placed as silver: 300 x 1.25 points; o-1 as bronze.
    lots = {lot.key: lot.points for lot in account(store, "c3").ledger.lots}
    assert lots == {"o-1": 150, "o-2": 100, "o-3": 375}


def test_orders_alone_that_move_a_known_customer_up_keep_the_rest_of_their_row(
    store: sessionmaker[Session], programme: Programme
) -> None:
    """A file of orders only: the customer's row is read whole again only for the tier it gains."""
    run(store, programme, identify("c4", "2026-01-01T00:00:00Z", email="c4@example.com", first_name="Ada"))
    run(
        store,
        programme,
        order("c4", "o-1", "2026-01-02T10:00:00Z", 150),
        order("c4", "o-2", "2026-01-05T10:00:00Z", 100),
        order("c5", "o-3", "2026-01-05T11:00:00Z", 20),
    )
    with store() as s:
        c4, c5 = s.get(Customer, "c4"), s.get(Customer, "c5")
        assert c4 is not None and c5 is not None
        assert (c4.tier, c4.email, c4.first_name, c4.order_count) == ("silver", "c4@example.com", "Ada", 2)
        assert "first_name" in c4.trait_times
        assert (c5.tier, c5.email, c5.order_count) == ("bronze", None, 1)


def test_birthday_points_come_once_a_year_at_local_midnight_and_recompute_agrees(
    store: sessionmaker[Session], programme: Programme
) -> None:
    run(
        store, programme, identify("c4", "2026-01-01T00:00:00Z", birthday="1990-03-05", timezone="Asia/Tokyo")
    )
    # 15:00 UTC on 4 March is midnight of 5 March in Tokyo.
    assert birthday_points(store, programme, utc("2026-03-04T14:59:00Z")) == 0
    assert birthday_points(store, programme, utc("2026-03-04T15:00:00Z")) == 1
    assert birthday_points(store, programme, utc("2026-03-05T10:00:00Z")) == 0  # the same day again: none new
    a = account(store, "c4")
    assert (a.ledger.spendable(), [lot.key for lot in a.ledger.lots]) == (100, ["birthday:c4:2026"])
    [(rebuilt, stored)] = replay(store, programme, utc("2026-03-06T00:00:00Z"), "c4")
    assert differences(rebuilt, stored) == []


def test_points_expiring_enters_once_per_expiry_day_thirty_days_before(
    store: sessionmaker[Session], programme: Programme
) -> None:
    catalog = load_catalog(ROOT / "journeys", ROOT / "templates")
    run(
        store,
        programme,
        identify("c5", "2025-01-01T00:00:00Z", email="c5@example.com", email_opt_in=True),
        order("c5", "o-1", "2025-04-01T09:00:00Z", 80),
        order("c5", "o-2", "2025-04-01T18:00:00Z", 40),  # expires the same day: one message
        order("c6", "o-3", "2025-04-02T09:00:00Z", 60),  # too few points to remind about
    )
    engine = store.kw["bind"]

    def tick_at(at: str) -> list[tuple[str, str, dict[str, Any]]]:
        tick(engine, store, catalog, utc(at), lambda ids: None)
        with store() as s:
            rows = s.scalars(select(Enrollment).where(Enrollment.journey_id == "points_expiring"))
            return [(e.customer_id, e.occurrence_key, e.context) for e in rows]

    assert tick_at("2026-03-01T08:00:00Z") == []  # more than 30 days before 1 April 2026
    due = [("c5", "2026-04-01", {"expiring_points": 120, "expiring_on": "2026-04-01"})]
    assert tick_at("2026-03-02T10:00:00Z") == due
    assert tick_at("2026-03-03T10:00:00Z") == due


def test_forgetting_a_customer_deletes_their_account_lots_and_transactions_and_no_one_elses(
    store: sessionmaker[Session], programme: Programme
) -> None:
    run(
        store,
        programme,
        order("e1", "o-1", "2026-01-02T10:00:00Z", 120),
        track("e1", "review_posted", "2026-01-03T11:00:00Z", "rv-1"),
        order("e2", "o-2", "2026-01-02T10:00:00Z", 80),
    )
    tables = (LoyaltyAccount, LoyaltyLot, LoyaltyTransaction)

    def held(cid: str) -> list[int]:
        with store() as s:
            return [
                s.scalar(select(func.count()).select_from(t).where(t.customer_id == cid)) or 0 for t in tables
            ]

    before = held("e1")
    assert all(before) and all(held("e2"))
    with store.begin() as s:
        done = forget(s, "e1", NOW)
    assert done["loyalty_rows"] == sum(before)
    assert held("e1") == [0, 0, 0] and all(held("e2"))
    with store.begin() as s:
        assert forget(s, "e1", NOW)["loyalty_rows"] == 0
    run(store, programme, identify("e1", "2026-03-02T00:00:00Z", email="e1@example.com"))
    a = account(store, "e1")
    assert (a.ledger.pending(), a.ledger.spendable()) == (0, 0)


def test_export_includes_the_account_its_balances_lots_and_transactions(
    store: sessionmaker[Session], programme: Programme
) -> None:
    run(
        store,
        programme,
        identify("x1", "2026-01-01T00:00:00Z", email="x1@example.com"),
        order("x1", "o-1", "2026-01-02T10:00:00Z", 120),
        track("x1", "review_posted", "2026-02-27T11:00:00Z", "rv-1"),
        order("x1", "o-2", "2026-02-25T10:00:00Z", 30),  # in its return window on 1 March
    )
    advance_accounts(store, programme, NOW)
    with store() as s:
        doc = export(s, "x1")
    assert doc is not None
    loyalty = doc["loyalty"]
    account = loyalty["account"]
    assert (account["points"], account["pending_points"], account["expiring_points"]) == (170, 30, 120)
    assert account["tier"] == "bronze" and account["debt"] == 0
    assert [(lot["key"], lot["points"], lot["active"]) for lot in loyalty["lots"]] == [
        ("o-1", 120, True),
        ("o-2", 30, False),
        ("rv-1", 50, True),
    ]
    assert [(t["kind"], t["lot"], t["points"]) for t in loyalty["transactions"]] == [
        ("earn", "o-1", 120),
        ("activate", "o-1", 0),  # the points move from pending to spendable: no new points
        ("earn", "rv-1", 50),
        ("earn", "o-2", 30),
    ]


def test_a_batch_of_thousands_of_orders_stores_every_lot_and_balance(
    store: sessionmaker[Session], programme: Programme
) -> None:
    # Over 1,764 lots of 17 columns: more than one statement's worth of parameters on PostgreSQL.
    orders = [order(f"b{n}", f"o-{n}", "2026-01-02T10:00:00Z", 10 + n % 7) for n in range(2500)]
    assert run(store, programme, *orders).rejected == []
    with store() as s:
        lots = s.scalar(select(func.count()).select_from(LoyaltyLot))
        points = s.scalar(select(func.sum(LoyaltyAccount.pending_points)))
    assert (lots, points) == (2500, sum(10 + n % 7 for n in range(2500)))


@pytest.mark.parametrize("others", [0, 1500], ids=["small batch", "copied batch"])
def test_orders_of_one_instant_are_replayed_in_the_order_they_came(
    store: sessionmaker[Session], programme: Programme, others: int
) -> None:
    """Two orders at one instant cross silver: the first came as bronze, the second made silver.

    Their keys sort the other way round ("o-10" before "o-9"), as the database writes them;
    recompute must still replay them as they came, or the second order's points would differ.
    """
    padding = [order(f"p{n}", f"p-{n}", "2026-01-03T10:00:00Z", 10) for n in range(others)]
    run(
        store,
        programme,
        order("c6", "o-1", "2026-01-02T10:00:00Z", 150),
        *padding,
        order("c6", "o-9", "2026-01-05T10:00:00Z", 30),
        order("c6", "o-10", "2026-01-05T10:00:00Z", 60),
    )
    lots = {lot.key: lot.points for lot in account(store, "c6").ledger.lots}
    assert lots == {"o-1": 150, "o-9": 30, "o-10": 60}
    [(rebuilt, stored)] = replay(store, programme, utc("2026-01-06T00:00:00Z"), "c6")
    assert differences(rebuilt, stored) == []
