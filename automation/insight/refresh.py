"""`automation insight refresh`: recompute every customer's RFM scores and predictions, and store them;
also the day's snapshot of the KPIs (`snapshots`), the dashboard's trends, after folding the
ledger's tallies (`automation.store.tallies`).

RFM is set-based SQL (`rfm`); the predictions fit BG/NBD and Gamma-Gamma on the
order summaries (`summaries`, `core.clv`) and are written back in chunks: on
PostgreSQL COPYed into a staging table and applied, with the scores, in one UPDATE.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, column, exists, func, or_, select, table, text, update
from sqlalchemy.orm import Session, sessionmaker

from automation.core.clv import FitError, Predictions, predict
from automation.insight import rfm, snapshots, summaries
from automation.store import tallies
from automation.store.models import Customer
from automation.store.sqlutil import copy_into, update_many

CHUNK = 20_000
PREDICTED = ("p_alive", "expected_orders_90d", "predicted_clv_365d", "clv_decile")
STAGING = "insight_staging"
#: PostgreSQL's sort memory for the refresh's transaction: the three quintile sorts and the order
#: summaries' grouping of a million customers then run in memory, not in temporary files.
WORK_MEM = "128MB"
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


def _unsynchronised() -> Any:
    """An UPDATE of customers that does not synchronise the ORM session (that would fetch every id back)."""
    return update(Customer).execution_options(synchronize_session=False)


def _write(s: Session, ids: list[str], found: Predictions, now: dt.datetime) -> int:
    """RFM scores, then the predictions (clearing those of customers no longer predicted); returns the scored.

    Elsewhere than on PostgreSQL: two passes over the customers, the predictions row by row.
    """
    scored = rfm.score(s)
    s.execute(
        _unsynchronised()
        .where(Customer.insight_at.is_not(None))
        .values(dict.fromkeys((*PREDICTED, "insight_at")))
    )
    for rows in _chunks(ids, found):
        update_many(
            s,
            Customer.__table__,
            [{**dict(zip(("id", *PREDICTED), r, strict=True)), "insight_at": now} for r in rows],
        )
    return scored


def _write_postgresql(s: Session, ids: list[str], found: Predictions, now: dt.datetime) -> int:
    """RFM scores and predictions in one UPDATE of each customer row (each row version costs a write of
    the row and of every index on the table); returns the scored.

    The predictions are COPYed into a staging table, joined to the scores; customers left out
    of both lose any old values.
    """
    s.execute(_STAGE)
    for rows in _chunks(ids, found):
        copy_into(s, STAGING, ("id", *PREDICTED), rows)
    s.execute(text(f"ANALYZE {STAGING}"))  # a temporary table has no statistics: the join needs them
    staged = table(STAGING, *(column(c) for c in ("id", *PREDICTED)))
    scores = rfm.scores()
    both = (
        select(
            func.coalesce(scores.c.id, staged.c.id).label("id"),
            scores.c.r,
            scores.c.f,
            scores.c.m,
            staged.c.id.label("staged"),
            *(staged.c[c] for c in PREDICTED),
        )
        .select_from(scores.join(staged, scores.c.id == staged.c.id, full=True))
        .subquery()
    )
    s.execute(
        _unsynchronised()
        .where(
            or_(Customer.rfm_r.is_not(None), Customer.insight_at.is_not(None)),
            ~rfm.SCORED,
            ~exists().where(staged.c.id == Customer.id),
        )
        .values(dict.fromkeys((*PREDICTED, "insight_at", "rfm_r", "rfm_f", "rfm_m", "rfm_segment")))
    )
    s.execute(
        _unsynchronised()
        .where(Customer.id == both.c.id)
        .values(
            rfm_r=both.c.r,
            rfm_f=both.c.f,
            rfm_m=both.c.m,
            rfm_segment=rfm.segment(both.c.r, both.c.f),
            insight_at=case((both.c.staged.is_not(None), now)),
            **{c: both.c[c] for c in PREDICTED},
        )
    )
    return int(s.scalar(select(func.count()).where(rfm.SCORED)) or 0)


def refresh(sessions: sessionmaker[Session], order_event: str, now: dt.datetime) -> Refreshed:
    """Snapshot the KPIs, score and predict every customer with orders before `now`, in one transaction.

    When the models cannot be fitted, the scores are still written and the old predictions kept.
    The ledger's tallies are folded first, in a transaction of their own.
    """
    with sessions.begin() as s:
        tallies.compact(s)
    with sessions.begin() as s:
        postgresql = s.get_bind().dialect.name == "postgresql"
        if postgresql:
            s.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        snapshots.take(s, order_event, now)
        data = summaries.read(s, order_event, now)
        try:
            found = predict(data.frequency, data.recency, data.T, data.average)
        except FitError as exc:
            return Refreshed(rfm.score(s), 0, None, str(exc))
        write = _write_postgresql if postgresql else _write
        scored = write(s, data.ids, found, now)
    return Refreshed(scored, len(data.ids), found, None)
