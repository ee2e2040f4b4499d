"""Ledger invariants over random sequences of orders, refunds, redemptions, adjustments and clock advances."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from automation.core.ledger import TOTAL_KINDS, Ledger, Lot, NotEnoughPoints, Txn, TxnKind

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)

Step = Callable[[Ledger], list[Txn]]


class LedgerMachine(RuleBasedStateMachine):
    """Applies random changes, recording each one so that a replay from scratch can be compared."""

    @initialize()
    def start(self) -> None:
        self.ledger = Ledger()
        self.now = T0
        self.steps: list[Step] = []
        self.txns: list[Txn] = []
        self.orders: list[str] = []
        self.n = 0

    def _apply(self, step: Step) -> None:
        self.txns.extend(step(self.ledger))
        self.steps.append(step)

    @rule(days=st.integers(0, 120))
    def advance(self, days: int) -> None:
        self.now += days * DAY
        at = self.now
        self._apply(lambda ledger: ledger.advance(at))

    @rule(points=st.integers(1, 500), pending=st.integers(0, 30), expire=st.integers(1, 400))
    def order(self, points: int, pending: int, expire: int) -> None:
        self.n += 1
        key, at = f"o{self.n}", self.now
        self.orders.append(key)
        lot = Lot(key, at, points, at + pending * DAY, at + expire * DAY, "order_placed", key, float(points))
        self._apply(lambda ledger: ledger.earn(dataclasses.replace(lot)))

    @rule(data=st.data(), share=st.none() | st.floats(0.0, 1.5))
    def refund(self, data: st.DataObject, share: float | None) -> None:
        if not self.orders:
            return
        self.n += 1
        key, at, order = f"f{self.n}", self.now, data.draw(st.sampled_from(self.orders))
        lot = self.ledger.lot(order)
        amount = None if share is None or lot is None else share * lot.amount
        self._apply(lambda ledger: ledger.refund(key, order, amount, at))

    @rule(points=st.integers(1, 800))
    def redeem(self, points: int) -> None:
        self.n += 1
        key, at = f"r{self.n}", self.now
        before = (self.ledger.spendable(), self.ledger.pending(), self.ledger.debt, self.ledger.clock)
        try:
            self._apply(lambda ledger: ledger.redeem(key, points, at))
        except NotEnoughPoints:
            after = (self.ledger.spendable(), self.ledger.pending(), self.ledger.debt, self.ledger.clock)
            assert after == before
            self.steps.append(lambda ledger: _rejected(ledger, key, points, at))

    @rule(points=st.integers(-300, 300))
    def adjust(self, points: int) -> None:
        self.n += 1
        key, at = f"a{self.n}", self.now
        self._apply(lambda ledger: ledger.adjust(key, points, at, at + 90 * DAY, "test"))

    @invariant()
    def lots_conserve_their_points(self) -> None:
        for lot in self.ledger.lots:
            assert min(lot.remaining, lot.spent, lot.expired, lot.cancelled) >= 0
            assert lot.remaining + lot.spent + lot.expired + lot.cancelled == lot.points
            assert lot.reversed <= lot.points

    @invariant()
    def the_balance_is_the_sum_of_the_transactions(self) -> None:
        total = sum(t.points for t in self.txns if t.kind in TOTAL_KINDS)
        assert total == self.ledger.spendable() + self.ledger.pending()

    @invariant()
    def a_debt_exists_only_when_nothing_is_spendable(self) -> None:
        assert self.ledger.debt >= 0
        if self.ledger.debt:
            assert sum(lot.remaining for lot in self.ledger.lots if lot.active) == 0

    @invariant()
    def keys_are_unique_and_replaying_gives_the_same_ledger(self) -> None:
        keys = [t.key for t in self.txns]
        assert len(keys) == len(set(keys))
        replay, txns = Ledger(), []
        for step in self.steps:
            txns.extend(step(replay))
        assert replay == self.ledger and txns == self.txns

    @invariant()
    def refunds_never_take_more_than_their_order_earned(self) -> None:
        for lot in self.ledger.lots:
            taken = -sum(t.points for t in self.txns if t.kind is TxnKind.REVERSE and t.lot == lot.key)
            assert taken == lot.reversed <= lot.points - lot.expired


def _rejected(ledger: Ledger, key: str, points: int, at: dt.datetime) -> list[Txn]:
    try:
        return ledger.redeem(key, points, at)
    except NotEnoughPoints:
        return []


LedgerMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
test_ledger_invariants = LedgerMachine.TestCase
