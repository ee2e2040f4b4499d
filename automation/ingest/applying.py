"""What a batch of records is applied with, whichever writer applies it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from automation.core.programme import Programme


@dataclass(frozen=True)
class Applying:
    """The instant, the order event's name, the way the records came and the loyalty programme.

    `how` is recorded with the topic choices the records make (`ingest`, or `api`
    for the tracking API); with a `programme` the records' events change the
    points ledger and tiers (`loyalty.events`).
    """

    now: dt.datetime
    order_event: str
    how: str = "ingest"
    programme: Programme | None = None
