"""A repeatable, realistic data set as identify/track JSON lines.

Customers spread over 32 time zones with tiers, birthdays (Feb 29 included),
sign-up dates over five years and about five orders each after signing up;
3% of them later move up a tier (a second identify, so `tier_changed` events).
The same seed gives the same file.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

ZONES = [
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Warsaw",
    "Europe/Athens",
    "Europe/Istanbul",
    "Europe/Moscow",
    "Africa/Lagos",
    "Africa/Johannesburg",
    "Africa/Cairo",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Adelaide",
    "Australia/Sydney",
    "Pacific/Auckland",
    "America/St_Johns",
    "America/Sao_Paulo",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Pacific/Honolulu",
]
TIERS = ("bronze", "bronze", "bronze", "silver", "silver", "gold", "platinum")
ORDER = ("bronze", "silver", "gold", "platinum")
NAMES = ("Ada", "Bo", "Chen", "Dara", "Emil", "Fatima", "Giulia", "Hiro", "Ines", "Jon", "Kofi", "Lena")
YEAR_S = 365 * 86400


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(int(epoch), dt.UTC).isoformat()


def customer_id(n: int) -> str:
    return f"c{n:07d}"


def generate(path: Path, customers: int, seed: int, now: dt.datetime) -> dict[str, int]:
    """Write the data set to `path`; returns the count of each kind of record."""
    rng = random.Random(seed)
    end = now.timestamp() - 3600
    start = end - 5 * YEAR_S
    counts = {"identify": 0, "order_placed": 0}
    with path.open("w", encoding="utf-8") as out:
        for n in range(customers):
            cid = customer_id(n)
            signed = start + rng.random() * (end - start)
            tier = rng.choice(TIERS)
            birthday = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(56 * 365))
            traits = {
                "email": f"{cid}@example.com",
                "first_name": rng.choice(NAMES),
                "timezone": rng.choice(ZONES),
                "tier": tier,
                "signed_up_at": _iso(signed),
                "birthday": birthday.isoformat(),
                "email_opt_in": rng.random() < 0.9,
                "sms_opt_in": False,
            }
            record = {"type": "identify", "customer_id": cid, "traits": traits, "timestamp": _iso(signed)}
            out.write(json.dumps(record) + "\n")
            counts["identify"] += 1
            for k in range(rng.randint(0, 10)):
                at = signed + rng.random() * (end - signed)
                total = rng.randint(500, 15000) / 100
                out.write(
                    f'{{"type": "track", "customer_id": "{cid}", "event": "order_placed", '
                    f'"event_id": "o-{n}-{k}", "timestamp": "{_iso(at)}", '
                    f'"properties": {{"total": {total}, "currency": "EUR"}}}}\n'
                )
                counts["order_placed"] += 1
            if rng.random() < 0.03 and tier != "platinum":
                later = signed + rng.random() * (end - signed)
                up = ORDER[ORDER.index(tier) + 1]
                record = {
                    "type": "identify",
                    "customer_id": cid,
                    "traits": {"tier": up},
                    "timestamp": _iso(later),
                }
                out.write(json.dumps(record) + "\n")
                counts["identify"] += 1
    return counts


def spike_orders(ids: list[str], at: dt.datetime) -> list[str]:
    """One new order per customer, all at `at`: the spike a tick must absorb."""
    return [
        json.dumps(
            {
                "type": "track",
                "customer_id": cid,
                "event": "order_placed",
                "event_id": f"spike-{cid}",
                "timestamp": at.isoformat(),
                "properties": {"total": 19.5, "currency": "EUR"},
            }
        )
        for cid in ids
    ]
