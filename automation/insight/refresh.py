"""`automation insight refresh`: recompute every customer's RFM scores and predictions, and store them.

RFM is set-based SQL (`rfm`); the predictions fit BG/NBD and Gamma-Gamma on the
order summaries (`summaries`, `core.clv`) and write back in chunks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from automation.core.clv import FitError, Predictions, predict
from automation.insight import rfm, summaries
from automation.store.models import Customer
from automation.store.sqlutil import update_many

CHUNK = 20_000
PREDICTED = ("p_alive", "expected_orders_90d", "predicted_clv_365d", "clv_decile", "insight_at")


@dataclass(frozen=True)
class Refreshed:
    scored: int
    predicted: int
    predictions: Predictions | None
    problem: str | None

    def summary(self) -> str:
        head = f"RFM scores for {self.scored:,} customers"
        if self.predictions is None:
            return f"{head}; no predictions: {self.problem}"
        b, g = self.predictions.purchases, self.predictions.spend
        return (
            f"{head}; predictions for {self.predicted:,} (BG/NBD r={b.r:.3f} alpha={b.alpha:.3f} a={b.a:.3f} "
            f"b={b.b:.3f}; Gamma-Gamma p={g.p:.3f} q={g.q:.3f} v={g.v:.3f})"
        )


def _write(s: Session, ids: list[str], found: Predictions, now: dt.datetime) -> None:
    s.execute(update(Customer).where(Customer.insight_at.is_not(None)).values(dict.fromkeys(PREDICTED, None)))
    columns = (found.p_alive, found.expected_orders_90d, found.predicted_clv_365d, found.clv_decile)
    for start in range(0, len(ids), CHUNK):
        end = start + CHUNK
        p, orders, clv, decile = (c[start:end].tolist() for c in columns)
        rows = [
            {
                "id": cid,
                "p_alive": p[i],
                "expected_orders_90d": orders[i],
                "predicted_clv_365d": clv[i],
                "clv_decile": int(decile[i]),
                "insight_at": now,
            }
            for i, cid in enumerate(ids[start:end])
        ]
        update_many(s, Customer.__table__, rows)


def refresh(sessions: sessionmaker[Session], order_event: str, now: dt.datetime) -> Refreshed:
    """Score and predict every customer with orders before `now`, in one transaction."""
    with sessions.begin() as s:
        scored = rfm.score(s)
        data = summaries.read(s, order_event, now)
        try:
            found = predict(data.frequency, data.recency, data.T, data.average)
        except FitError as exc:
            return Refreshed(scored, 0, None, str(exc))
        _write(s, data.ids, found, now)
    return Refreshed(scored, len(data.ids), found, None)
