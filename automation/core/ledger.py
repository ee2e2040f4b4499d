"""Points-ledger arithmetic: lots, FIFO redemption, expiry, refunds and debt. Pure.

Every point earned is a *lot* with its own activation (after the pending
period) and expiry. Spending consumes active lots in expiry order (soonest
first), so expiring a lot removes only what is left of it, never points
already spent. A refund reverses the points its order earned (proportionally
for a partial refund, capped at the whole order): first what is left of the
order's lot (pending points are cancelled), then, for points already spent,
other active lots in expiry order, and what still remains becomes a *debt*
(a negative balance) that the next points to become spendable pay back first.

Each change yields a `Txn` whose key is derived from its cause (the event, the
lot and its date, the adjustment key), so the store can append transactions
idempotently. `Ledger` holds one customer's lots and debt; the store loads it,
applies changes at their instants and writes the result back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

#: Sorts lots without expiry after every lot that has one.
_NEVER = dt.datetime.max.replace(tzinfo=dt.UTC)


class TxnKind(StrEnum):
    EARN = "earn"
    ACTIVATE = "activate"
    REDEEM = "redeem"
    EXPIRE = "expire"
    REVERSE = "reverse"
    ADJUST = "adjust"
    REPAY = "repay"


#: Kinds whose points change the customer's total (pending plus spendable); the others move points.
TOTAL_KINDS = frozenset({TxnKind.EARN, TxnKind.REDEEM, TxnKind.EXPIRE, TxnKind.REVERSE, TxnKind.ADJUST})


class NotEnoughPoints(ValueError):
    """A redemption larger than the spendable balance; nothing was changed."""


class Txn(NamedTuple):
    """One appended transaction: `points` is signed (what the customer's total gains or loses).

    A named tuple: ingest and `recompute` make one or two for every event, and a tuple is made
    several times faster than a frozen dataclass.
    """

    key: str
    kind: TxnKind
    points: int
    at: dt.datetime
    lot: str | None = None
    detail: str = ""


@dataclass
class Lot:
    """Points earned from one cause: `points` = `remaining` + `spent` + `expired` + `cancelled`.

    `reversed` counts every point a refund took back for this lot, `cancelled` the part of
    it taken from the lot itself (the rest came from other lots or became debt).
    """

    key: str
    earned_at: dt.datetime
    points: int
    activates_at: dt.datetime
    expires_at: dt.datetime | None
    event: str = ""
    order_id: str | None = None
    amount: float = 0.0
    refunded_amount: float = 0.0
    remaining: int = -1
    spent: int = 0
    expired: int = 0
    reversed: int = 0
    cancelled: int = 0
    active: bool = False

    def __post_init__(self) -> None:
        if self.remaining < 0:
            self.remaining = self.points

    def order(self) -> tuple[dt.datetime, dt.datetime, str]:
        return (self.expires_at or _NEVER, self.earned_at, self.key)


@dataclass
class Ledger:
    """One customer's lots and debt at `clock` (the newest instant applied)."""

    lots: list[Lot] = field(default_factory=list)
    debt: int = 0
    clock: dt.datetime | None = None

    # --- what a customer holds -------------------------------------------------
    def spendable(self) -> int:
        """Active points less any debt: the balance (negative while a debt is unpaid)."""
        return sum(lot.remaining for lot in self.lots if lot.active) - self.debt

    def pending(self) -> int:
        return sum(lot.remaining for lot in self.lots if not lot.active)

    def expiring(self, now: dt.datetime, within: dt.timedelta) -> list[Lot]:
        """Active lots with points left that expire within `within` of `now`."""
        return [
            lot
            for lot in self.lots
            if lot.active
            and lot.remaining > 0
            and lot.expires_at is not None
            and lot.expires_at <= now + within
        ]

    def lot(self, key: str) -> Lot | None:
        return next((lot for lot in self.lots if lot.key == key), None)

    # --- time ------------------------------------------------------------------
    def advance(self, now: dt.datetime) -> list[Txn]:
        """Activate and expire every lot due by `now`, each at its own instant, in time order."""
        if self.clock is not None and now <= self.clock:
            return []
        due: list[tuple[dt.datetime, int, Lot]] = []
        for lot in self.lots:
            if not lot.active and lot.activates_at <= now:
                due.append((lot.activates_at, 0, lot))
            if lot.expires_at is not None and lot.expires_at <= now and lot.remaining > 0:
                due.append((lot.expires_at, 1, lot))
        out: list[Txn] = []
        for at, step, lot in sorted(due, key=lambda d: (d[0], d[1], d[2].key)):
            if step == 0 and not lot.active:
                lot.active = True
                out.append(Txn(f"activate:{lot.key}", TxnKind.ACTIVATE, 0, at, lot.key, str(lot.remaining)))
                out.extend(self._repay(lot, at))
            elif step == 1 and lot.remaining > 0:
                out.append(
                    Txn(
                        f"expire:{lot.key}:{at.date().isoformat()}",
                        TxnKind.EXPIRE,
                        -lot.remaining,
                        at,
                        lot.key,
                    )
                )
                lot.expired += lot.remaining
                lot.remaining = 0
                lot.active = True
        self.clock = now
        return out

    def _repay(self, lot: Lot, at: dt.datetime) -> list[Txn]:
        """Newly spendable points pay back a debt first."""
        paid = min(self.debt, lot.remaining)
        if paid <= 0:
            return []
        lot.remaining -= paid
        lot.spent += paid
        self.debt -= paid
        return [Txn(f"repay:{lot.key}", TxnKind.REPAY, 0, at, lot.key, str(paid))]

    # --- changes ---------------------------------------------------------------
    def earn(self, lot: Lot) -> list[Txn]:
        """Add a lot earned at `lot.earned_at` (active at once when its activation is not later).

        An order that earns no points still makes a lot: its amount counts toward the tier.
        """
        if lot.points < 0 or self.lot(lot.key) is not None:
            return []
        out = self.advance(lot.earned_at)
        self.lots.append(lot)
        if lot.points:
            out.append(Txn(f"earn:{lot.key}", TxnKind.EARN, lot.points, lot.earned_at, lot.key, lot.event))
        if lot.activates_at <= (self.clock or lot.earned_at):
            lot.active = True
            out.extend(self._repay(lot, lot.earned_at))
        return out

    def _consume(self, points: int) -> int:
        """Take up to `points` from active lots, soonest expiry first; returns what could not be taken."""
        left = points
        for lot in sorted((x for x in self.lots if x.active and x.remaining > 0), key=Lot.order):
            take = min(left, lot.remaining)
            lot.remaining -= take
            lot.spent += take
            left -= take
            if left == 0:
                break
        return left

    def redeem(self, key: str, points: int, at: dt.datetime, detail: str = "") -> list[Txn]:
        """Spend `points`; `NotEnoughPoints` (changing nothing, not even the clock) when over the balance."""
        if points <= 0:
            raise ValueError("a redemption spends a positive number of points")
        if points > self._spendable_at(at):
            raise NotEnoughPoints(
                f"not enough points: {points} asked, {max(self._spendable_at(at), 0)} spendable"
            )
        out = self.advance(at)
        self._consume(points)
        out.append(Txn(f"redeem:{key}", TxnKind.REDEEM, -points, at, None, detail))
        return out

    def _spendable_at(self, at: dt.datetime) -> int:
        probe = Ledger([_copy(lot) for lot in self.lots], self.debt, self.clock)
        probe.advance(at)
        return probe.spendable()

    def adjust(
        self, key: str, points: int, at: dt.datetime, expires_at: dt.datetime | None, reason: str
    ) -> list[Txn]:
        """A manual change: a positive one is an active lot; a negative one is taken FIFO, then as debt."""
        if points == 0:
            return []
        if points > 0:
            lot = Lot(f"adjust:{key}", at, points, at, expires_at, event="adjustment")
            return [
                Txn(f"adjust:{key}", TxnKind.ADJUST, points, at, lot.key, reason)
                if t.kind is TxnKind.EARN
                else t
                for t in self.earn(lot)
            ]
        out = self.advance(at)
        self.debt += self._consume(-points)
        out.append(Txn(f"adjust:{key}", TxnKind.ADJUST, points, at, None, reason))
        return out

    def refund(self, key: str, order_id: str, amount: float | None, at: dt.datetime) -> list[Txn]:
        """Reverse the points of the order `order_id` for a refund of `amount` (None: the whole order)."""
        lot = next((x for x in self.lots if x.order_id == order_id), None)
        if lot is None:
            return []
        out = self.advance(at)
        if amount is None or lot.amount <= 0:
            lot.refunded_amount = lot.amount
            target = lot.points
        else:
            lot.refunded_amount = min(lot.amount, lot.refunded_amount + max(amount, 0.0))
            target = int(lot.points * lot.refunded_amount / lot.amount)
        # Expired points were never the customer's to keep, so they are not charged again.
        reverse = min(target - lot.reversed, lot.points - lot.expired - lot.reversed)
        if reverse <= 0:
            return out
        lot.reversed += reverse
        from_lot = min(reverse, lot.remaining)
        lot.remaining -= from_lot
        lot.cancelled += from_lot
        self.debt += self._consume(reverse - from_lot)
        out.append(Txn(f"refund:{key}", TxnKind.REVERSE, -reverse, at, lot.key, order_id))
        return out


def _copy(lot: Lot) -> Lot:
    return Lot(**lot.__dict__)
