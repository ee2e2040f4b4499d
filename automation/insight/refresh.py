"""`automation insight refresh`: recompute every customer's RFM scores and predictions, and store them;
also the day's snapshot of the KPIs (`snapshots`), the dashboard's trends.

RFM is set-based SQL (`rfm`); the predictions fit BG/NBD and Gamma-Gamma on the
order summaries (`summaries`, `core.clv`) and are written back in chunks: on
PostgreSQL COPYed into a staging table and applied in one UPDATE.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import column, table, text, update
from sqlalchemy.orm import Session, sessionmaker

from automation.core.clv import FitError, Predictions, predict
from automation.insight import rfm, snapshots, summaries
from automation.store.models import Customer
from automation.store.sqlutil import copy_into, update_many

CHUNK = 20_000
PREDICTED = ("p_alive", "expected_orders_90d", "predicted_clv_365d", "clv_decile")
STAGING = "insight_staging"
_STAGE = text(
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} (id text PRIMARY KEY, p_alive float8, "
    "expected_orders_90d float8, predicted_clv_365d float8, clv_decile int2) ON COMMIT DROP"
)


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


def _chunks(ids: list[str], found: Predictions) -> Any:
    """Rows of (id, p_alive, expected orders, predicted value, decile), CHUNK at a time."""
    columns = (
        found.p_alive,
        found.expected_orders_90d,
        found.predicted_clv_365d,
        found.clv_decile.astype(int),
    )
    for start in range(0, len(ids), CHUNK):
        end = start + CHUNK
        yield list(zip(ids[start:end], *(c[start:end].tolist() for c in columns), strict=True))


def _write(s: Session, ids: list[str], found: Predictions, now: dt.datetime) -> None:
    s.execute(
        update(Customer)
        .where(Customer.insight_at.is_not(None))
        .values(dict.fromkeys((*PREDICTED, "insight_at")))
    )
    if s.get_bind().dialect.name != "postgresql":
        for rows in _chunks(ids, found):
            update_many(
                s,
                Customer.__table__,
                [{**dict(zip(("id", *PREDICTED), r, strict=True)), "insight_at": now} for r in rows],
            )
        return
    s.execute(_STAGE)
    for rows in _chunks(ids, found):
        copy_into(s, STAGING, ("id", *PREDICTED), rows)
    staged = table(STAGING, *(column(c) for c in ("id", *PREDICTED)))
    s.execute(
        update(Customer)
        .where(Customer.id == staged.c.id)
        .values({**{c: staged.c[c] for c in PREDICTED}, "insight_at": now})
    )


def refresh(sessions: sessionmaker[Session], order_event: str, now: dt.datetime) -> Refreshed:
    """Snapshot the KPIs, score and predict every customer with orders before `now`: one transaction."""
    with sessions.begin() as s:
        snapshots.take(s, order_event, now)
        scored = rfm.score(s)
        data = summaries.read(s, order_event, now)
        try:
            found = predict(data.frequency, data.recency, data.T, data.average)
        except FitError as exc:
            return Refreshed(scored, 0, None, str(exc))
        _write(s, data.ids, found, now)
    return Refreshed(scored, len(data.ids), found, None)
