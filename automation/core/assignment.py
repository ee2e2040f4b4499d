"""Deterministic assignment of a customer to an arm: a hash into 10,000 buckets. Pure.

The bucket of (journey id, step or `holdout`, customer id) is the same on every
tick, process and machine, so a customer stays in the arm they were put in.
"""

from __future__ import annotations

import hashlib

BUCKETS = 10_000
#: The journey id under which the global control group is drawn.
GLOBAL = "global"
HOLDOUT = "holdout"


def bucket(journey_id: str, unit: str, customer_id: str) -> int:
    """The customer's bucket, 0 to 9,999, for one journey and one step (or `holdout`)."""
    digest = hashlib.sha256(f"{journey_id}\x1f{unit}\x1f{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def held_out(journey_id: str, customer_id: str, pct: float) -> bool:
    """Whether the customer is in the journey's holdout of `pct` percent."""
    return bucket(journey_id, HOLDOUT, customer_id) < round(pct * BUCKETS / 100)


def in_global_control(customer_id: str, pct: float) -> bool:
    """Whether the customer is in the global control group (AUTOMATION_GLOBAL_HOLDOUT_PCT)."""
    return held_out(GLOBAL, customer_id, pct)
