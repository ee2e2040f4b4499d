"""`automation insight validate`: fit before a split, compare predicted with actual orders after it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from automation.core.clv import BgNbd, by_decile, fit_bgnbd
from automation.insight import summaries


@dataclass(frozen=True)
class Validation:
    model: BgNbd
    days: float
    rows: list[tuple[int, int, float, float]]


def validate(s: Session, order_event: str, split: dt.datetime, until: dt.datetime) -> Validation:
    """BG/NBD fitted on orders before `split`; each decile's predicted and actual orders in [split, until)."""
    data = summaries.read(s, order_event, split)
    model = fit_bgnbd(data.frequency, data.recency, data.T)
    days = (until - split).total_seconds() / summaries.DAY_S
    predicted = model.expected_orders(days, data.frequency, data.recency, data.T)
    after = summaries.orders_between(s, order_event, split, until)
    actual = np.array([after.get(cid, 0) for cid in data.ids], dtype=np.float64)
    return Validation(model, days, by_decile(predicted, actual))
