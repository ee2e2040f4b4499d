"""Coupon pools in the database: import, generate, status, assignment to deliveries, redemption.

A code goes to at most one delivery: the worker takes it with one UPDATE whose
subquery picks the pool's first free code `FOR UPDATE SKIP LOCKED` on
PostgreSQL (concurrent workers each get another row; SQLite has one writer),
and the unique `delivery_id` column refuses a second holder whatever happens.
A delivery that already holds a code (a redelivered message) gets it back.
The pure rules (patterns, import lines) are `automation.core.coupons`.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from automation.core import coupons as rules
from automation.core.coupons import Coupon
from automation.core.records import Track
from automation.store.models import Coupon as CouponRow
from automation.store.models import CouponPool, Delivery

log = logging.getLogger("automation.loyalty.coupons")


@dataclass(frozen=True)
class PoolStatus:
    """One pool's counts (`left`: neither assigned nor expired)."""

    pool: str
    total: int
    assigned: int
    redeemed: int
    left: int
    low_water: int

    @property
    def low(self) -> bool:
        """Below its low water: time to import or generate more codes."""
        return self.left < self.low_water

    def as_dict(self) -> dict[str, object]:
        return {
            "pool": self.pool,
            "total": self.total,
            "assigned": self.assigned,
            "redeemed": self.redeemed,
            "left": self.left,
            "low_water": self.low_water,
        }


@dataclass(frozen=True)
class Added:
    """What an import or a generation did: codes added, and duplicates ignored (with their lines)."""

    added: int
    duplicates: list[int]


def pool_settings(s: Session, pool: str, now: dt.datetime, low_water: int | None) -> CouponPool:
    """The pool's row, made on first use; `low_water` changes it when given."""
    row = s.get(CouponPool, pool)
    if row is None:
        row = CouponPool(name=pool, low_water=rules.DEFAULT_LOW_WATER, created_at=now)
        s.add(row)
    if low_water is not None:
        row.low_water = low_water
    s.flush()
    return row


def _codes(s: Session, pool: str) -> set[str]:
    return set(s.scalars(select(CouponRow.code).where(CouponRow.pool == pool)))


def _add(s: Session, pool: str, lines: Iterable[rules.Line], now: dt.datetime) -> int:
    rows = [
        {"pool": pool, "code": line.code, "expires_at": line.expires_at, "added_at": now} for line in lines
    ]
    if rows:
        s.execute(insert(CouponRow), rows)
    return len(rows)


def import_codes(
    s: Session, pool: str, lines: Sequence[rules.Line], now: dt.datetime, low_water: int | None = None
) -> Added:
    """Add the file's codes to the pool; codes already in it (or repeated) are ignored and reported."""
    pool_settings(s, pool, now, low_water)
    fresh, repeated = rules.duplicates(lines, _codes(s, pool))
    return Added(_add(s, pool, fresh, now), [line.line for line in repeated])


def generate(
    s: Session, pool: str, pattern: str, count: int, now: dt.datetime, low_water: int | None = None
) -> Added:
    """Add `count` random codes of the pattern, unique within the pool."""
    pool_settings(s, pool, now, low_water)
    made = rules.generate(pattern, count, _codes(s, pool), secrets.choice)
    return Added(_add(s, pool, (rules.Line(0, code) for code in made), now), [])


def _free(at: dt.datetime) -> ColumnElement[bool]:
    """Neither assigned nor expired at `at`."""
    return and_(
        CouponRow.delivery_id.is_(None), or_(CouponRow.expires_at.is_(None), CouponRow.expires_at > at)
    )


def status(s: Session, at: dt.datetime, pool: str | None = None) -> list[PoolStatus]:
    """Each pool's counts at `at` (one pool when named), by name."""
    names = [pool] if pool is not None else list(s.scalars(select(CouponPool.name).order_by(CouponPool.name)))
    settings = {p.name: p.low_water for p in s.scalars(select(CouponPool).where(CouponPool.name.in_(names)))}
    counts = {
        name: (total, assigned, redeemed)
        for name, total, assigned, redeemed in s.execute(
            select(
                CouponRow.pool,
                func.count(),
                func.count(CouponRow.delivery_id),
                func.count(CouponRow.redeemed_at),
            )
            .where(CouponRow.pool.in_(names))
            .group_by(CouponRow.pool)
        )
    }
    left = left_in(s, names, at)
    return [
        PoolStatus(name, *counts.get(name, (0, 0, 0)), left.get(name, 0), settings[name])
        for name in names
        if name in settings
    ]


def left_in(s: Session, pools: Collection[str], at: dt.datetime) -> dict[str, int]:
    """How many codes each pool can still give at `at`."""
    free = select(CouponRow.pool, func.count()).where(CouponRow.pool.in_(pools), _free(at))
    return {name: n for name, n in s.execute(free.group_by(CouponRow.pool))}


def take(s: Session, pool: str, delivery_id: int, at: dt.datetime) -> Coupon | None:
    """The delivery's code of the pool: the one it holds, else a free one now its own; None when empty."""
    held = s.execute(
        select(CouponRow.code, CouponRow.expires_at).where(CouponRow.delivery_id == delivery_id)
    ).first()
    if held is not None:
        return Coupon(*held)
    first_free = (
        select(CouponRow.id)
        .where(CouponRow.pool == pool, _free(at))
        .order_by(CouponRow.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    got = s.execute(
        update(CouponRow)
        .where(CouponRow.id == first_free)
        .values(delivery_id=delivery_id, assigned_at=at)
        .returning(CouponRow.code, CouponRow.expires_at)
    ).first()
    return Coupon(*got) if got is not None else None


def release(s: Session, delivery_ids: Collection[int]) -> None:
    """Free the codes of deliveries that were not sent after all (failed before the provider)."""
    if delivery_ids:
        s.execute(
            update(CouponRow)
            .where(CouponRow.delivery_id.in_(delivery_ids), CouponRow.redeemed_at.is_(None))
            .values(delivery_id=None, assigned_at=None)
        )


def warn_low(s: Session, pools: Collection[str], at: dt.datetime) -> None:
    """Log a warning for each pool now below its low water (counts and names only, never a code)."""
    if not pools:
        return
    for p in status(s, at):
        if p.pool in pools and p.low:
            log.warning("coupon pool %s has %d codes left (low water %d)", p.pool, p.left, p.low_water)


def redeem_orders(s: Session, tracks: Iterable[Track], order_event: str) -> int:
    """Mark redeemed the assigned codes that orders name in `properties.coupon`; how many were marked.

    The first order naming a code redeems it; ingesting it again, or another order naming it, changes
    nothing. Only the customer a code was sent to redeems it: another customer's order naming it (a
    shared or leaked code) counts for no one and leaves the code to its holder.
    """
    marked = 0
    for t in tracks:
        code = t.properties.get("coupon") if t.event == order_event else None
        if isinstance(code, str) and code:
            marked += redeem(s, code.strip(), t.customer_id, t.event_key, t.timestamp)
    return marked


def redeem(s: Session, code: str, customer_id: str, order_id: str, at: dt.datetime) -> int:
    """Mark the code sent to this customer redeemed by their order (keyed by its event key) unless it is."""
    held = (
        select(Delivery.id)
        .where(Delivery.id == CouponRow.delivery_id, Delivery.customer_id == customer_id)
        .exists()
    )
    done = s.scalars(
        update(CouponRow)
        .where(CouponRow.code == code, held, CouponRow.redeemed_at.is_(None))
        .values(redeemed_at=at, redeemed_by=order_id)
        .returning(CouponRow.id)
    )
    return len(list(done))
