"""The pure points ledger: pending, FIFO redemption, expiry, refunds before and after redemption, debt."""

from __future__ import annotations

import datetime as dt

import pytest

from automation.core.ledger import Ledger, Lot, NotEnoughPoints, TxnKind

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def order(key: str, points: int, day: int, *, pending: int = 14, expire: int = 365, amount: float = 0) -> Lot:
    at = T0 + day * DAY
    return Lot(
        key, at, points, at + pending * DAY, at + expire * DAY, "order_placed", key, amount or float(points)
    )


def test_order_points_are_pending_until_the_return_window_ends() -> None:
    ledger = Ledger()
    ledger.earn(order("o1", 100, 0))
    assert (ledger.pending(), ledger.spendable()) == (100, 0)
    txns = ledger.advance(T0 + 14 * DAY)
    assert [t.kind for t in txns] == [TxnKind.ACTIVATE]
    assert (ledger.pending(), ledger.spendable()) == (0, 100)


def test_redemption_takes_the_soonest_expiring_lot_first_and_expiry_removes_only_what_is_left() -> None:
    ledger = Ledger()
    ledger.earn(order("late", 100, 0, pending=0, expire=300))
    ledger.earn(order("soon", 100, 1, pending=0, expire=30))
    ledger.redeem("r1", 120, T0 + 2 * DAY)
    assert (ledger.lot("soon").remaining, ledger.lot("late").remaining) == (0, 80)  # type: ignore[union-attr]
    assert ledger.advance(T0 + 40 * DAY) == []
    expired = ledger.advance(T0 + 301 * DAY)
    assert [(t.kind, t.points) for t in expired] == [(TxnKind.EXPIRE, -80)]
    assert ledger.spendable() == 0


def test_a_redemption_over_the_balance_is_rejected_and_changes_nothing() -> None:
    ledger = Ledger()
    ledger.earn(order("o1", 100, 0))
    with pytest.raises(NotEnoughPoints, match="not enough points"):
        ledger.redeem("r1", 50, T0 + DAY)  # still pending
    assert ledger.clock == T0 and ledger.lot("o1").active is False  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("refund", "redeem", "spendable", "debt"),
    [
        (None, 0, 0, 0),  # full refund of unspent points: all reversed
        (50.0, 0, 50, 0),  # half the order refunded: half the points
        (None, 80, -80, 80),  # full refund after spending 80: balance goes negative
        (50.0, 80, -30, 30),  # half refund after spending 80: 20 left, 30 owed
    ],
)
def test_a_refund_reverses_the_order_points_once(
    refund: float | None, redeem: int, spendable: int, debt: int
) -> None:
    ledger = Ledger()
    ledger.earn(order("o1", 100, 0, pending=0, amount=100))
    if redeem:
        ledger.redeem("r1", redeem, T0 + DAY)
    ledger.refund("f1", "o1", refund, T0 + 2 * DAY)
    assert (ledger.spendable(), ledger.debt) == (spendable, debt)
    # Refunding again beyond the order's total takes nothing more.
    ledger.refund("f2", "o1", None, T0 + 3 * DAY)
    ledger.refund("f3", "o1", 500.0, T0 + 3 * DAY)
    assert ledger.lot("o1").reversed == 100  # type: ignore[union-attr]
    assert ledger.spendable() == -redeem


def test_pending_points_of_a_refunded_order_are_cancelled() -> None:
    ledger = Ledger()
    ledger.earn(order("o1", 100, 0, amount=100))
    ledger.refund("f1", "o1", None, T0 + DAY)
    assert (ledger.pending(), ledger.spendable(), ledger.debt) == (0, 0, 0)
    ledger.advance(T0 + 30 * DAY)
    assert ledger.spendable() == 0


def test_the_next_points_to_become_spendable_pay_a_debt_first() -> None:
    ledger = Ledger()
    ledger.earn(order("o1", 100, 0, pending=0))
    ledger.redeem("r1", 100, T0 + DAY)
    ledger.refund("f1", "o1", None, T0 + 2 * DAY)
    assert ledger.spendable() == -100
    ledger.earn(order("o2", 60, 3))
    assert (ledger.spendable(), ledger.pending()) == (-100, 60)  # pending points do not repay yet
    kinds = [t.kind for t in ledger.advance(T0 + 17 * DAY)]
    assert kinds == [TxnKind.ACTIVATE, TxnKind.REPAY]
    assert (ledger.spendable(), ledger.debt) == (-40, 40)


def test_a_negative_adjustment_may_leave_a_debt() -> None:
    ledger = Ledger()
    ledger.adjust("gift", 30, T0, None, "welcome gift")
    ledger.adjust("fix", -50, T0 + DAY, None, "correction")
    assert (ledger.spendable(), ledger.debt) == (-20, 20)
