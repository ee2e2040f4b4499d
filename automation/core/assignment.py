"""Experiment assignment: which arm a customer lands in, the same on every tick, process and machine.

A customer's bucket for one unit of a journey (a step's variants, or the
journey's `holdout`) is a BLAKE2b hash of (journey id, unit, customer id) into
`BUCKETS` buckets; weights cut the buckets into consecutive ranges, one per arm,
in the order the arms are written. Nothing is stored to decide again, so a
re-run finds the same arm; changing the weights moves the cut points, which
only matters to customers who have not been assigned yet (the arm of a
delivery already made is recorded on it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

BUCKETS = 10_000
#: The unit of a journey's holdout, and the arm its held-out entrants are in.
HOLDOUT = "holdout"
#: The arm of the entrants of a holdout journey who were not held out, in a step without variants.
TREATMENT = "treatment"
#: The journey id of the global control group's hash: no journey may be called this (ids are lower case).
GLOBAL = "*global*"
#: The arm recorded for a customer of the global control group.
GLOBAL_CONTROL = "global_control"


def bucket(journey_id: str, unit: str, customer_id: str) -> int:
    """The customer's bucket in [0, BUCKETS) for one unit of one journey."""
    key = "\x1f".join((journey_id, unit, customer_id)).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % BUCKETS


@dataclass(frozen=True)
class Assignment:
    """An arm and why: the customer's bucket lies in [low, high) of BUCKETS."""

    arm: str
    bucket: int
    low: int
    high: int

    def why(self) -> str:
        return f"bucket {self.bucket} of {BUCKETS:,} lies in {self.arm!r}'s range [{self.low}, {self.high})"


def cut_points(weights: Sequence[float]) -> list[int]:
    """The upper bound of each arm's range: cumulative weights scaled to BUCKETS."""
    total = float(sum(weights))
    out, running = [], 0.0
    for w in weights:
        running += w
        out.append(round(running / total * BUCKETS))
    return out


def pick(journey_id: str, unit: str, customer_id: str, arms: Sequence[tuple[str, float]]) -> Assignment:
    """The arm of `arms` ((id, weight) pairs, weights positive) the customer lands in."""
    b = bucket(journey_id, unit, customer_id)
    low = 0
    for (arm, _), high in zip(arms, cut_points([w for _, w in arms]), strict=True):
        if b < high:
            return Assignment(arm, b, low, high)
        low = high
    raise ValueError("no arms")


def held_out(journey_id: str, customer_id: str, pct: float) -> Assignment | None:
    """The holdout assignment when the customer is in the `pct` per cent held out of this journey."""
    high = round(pct * BUCKETS / 100)
    b = bucket(journey_id, HOLDOUT, customer_id)
    return Assignment(HOLDOUT, b, 0, high) if b < high else None


def in_global_control(customer_id: str, pct: float) -> bool:
    """Whether the customer is in the global control group of `pct` per cent (no marketing message)."""
    return global_control(customer_id, pct) is not None


def global_control(customer_id: str, pct: float) -> Assignment | None:
    """The customer's global control assignment, when they are in the group."""
    found = held_out(GLOBAL, customer_id, pct)
    return Assignment(GLOBAL_CONTROL, found.bucket, found.low, found.high) if found else None
