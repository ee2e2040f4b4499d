"""`insight refresh` on PostgreSQL and SQLite: RFM scores by quintile, segments, predictions as facts.

Ten buyers c0..c9: ci has i+1 orders of $10 + 3k + i (k-th order before the last), a week apart, the last one 10*i days
before 2026-06-01. So c0 is the most recent with the fewest orders, c9 the
oldest with the most: quintiles of two customers each.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from automation.core.clv import predict
from automation.core.context import customer_view
from automation.definitions.loader import parse_filter
from automation.ingest.load import ingest
from automation.insight import summaries
from automation.insight.refresh import refresh
from automation.store import db
from automation.store.filter_sql import compile_filter
from automation.store.models import Customer
from tests.harness import cli, identify, track, utc

NOW = utc("2026-07-01T00:00:00Z")
LAST = utc("2026-06-01T12:00:00Z")
EXPECTED = {
    "c0": (5, 1, 1, "new"),
    "c1": (5, 1, 1, "new"),
    "c2": (4, 2, 2, "potential_loyalist"),
    "c3": (4, 2, 2, "potential_loyalist"),
    "c4": (3, 3, 3, "need_attention"),
    "c5": (3, 3, 3, "need_attention"),
    "c6": (2, 4, 4, "at_risk"),
    "c7": (2, 4, 4, "at_risk"),
    "c8": (1, 5, 5, "cannot_lose"),
    "c9": (1, 5, 5, "cannot_lose"),
    "browser": (None, None, None, None),
}


def _records() -> list[str]:
    out = [identify("browser", email="b@example.com")]
    for i in range(10):
        cid = f"c{i}"
        out.append(identify(cid, email=f"{cid}@example.com"))
        last = LAST - dt.timedelta(days=10 * i)
        for k in range(i + 1):
            at = (last - dt.timedelta(days=7 * k)).isoformat().replace("+00:00", "Z")
            out.append(track(cid, "order_placed", at, f"o-{cid}-{k}", total=10 + 3 * k + i))
    return [json.dumps(r) for r in out]


def _load(sessions: sessionmaker[Session]) -> None:
    assert ingest(_records(), "t", sessions, NOW).rejected == []


@pytest.fixture
def shop(either_database: sessionmaker[Session]) -> sessionmaker[Session]:
    _load(either_database)
    return either_database


def _where(sessions: sessionmaker[Session], text: str) -> list[str]:
    with sessions() as s:
        return list(s.scalars(select(Customer.id).where(compile_filter(parse_filter(text, "--where")))))


def test_refresh_scores_every_buyer_by_quintile_and_names_the_segment(shop: sessionmaker[Session]) -> None:
    done = refresh(shop, "order_placed", NOW)
    assert (done.scored, done.predicted, done.problem) == (10, 10, None)
    with shop() as s:
        got = {c.id: (c.rfm_r, c.rfm_f, c.rfm_m, c.rfm_segment) for c in s.scalars(select(Customer))}
    assert got == EXPECTED
    assert sorted(_where(shop, "{fact: rfm_segment, in: [at_risk, cannot_lose]}")) == ["c6", "c7", "c8", "c9"]
    assert sorted(_where(shop, "{fact: rfm_r, gte: 4}")) == ["c0", "c1", "c2", "c3"]


def test_refresh_stores_the_predictions_the_models_make(shop: sessionmaker[Session]) -> None:
    refresh(shop, "order_placed", NOW)
    with shop() as s:
        data = summaries.read(s, "order_placed", NOW)
        stored = {c.id: c for c in s.scalars(select(Customer).where(Customer.insight_at.is_not(None)))}
        views = {cid: customer_view(c) for cid, c in stored.items()}
    assert data.ids == [f"c{i}" for i in range(10)]
    assert list(data.frequency) == list(range(10))
    assert data.recency[3] == pytest.approx(21.0) and data.T[0] == pytest.approx(29.5)
    expected = predict(data.frequency, data.recency, data.T, data.average)
    for i, cid in enumerate(data.ids):
        assert stored[cid].p_alive == pytest.approx(expected.p_alive[i])
        assert stored[cid].expected_orders_90d == pytest.approx(expected.expected_orders_90d[i])
        assert stored[cid].predicted_clv_365d == pytest.approx(expected.predicted_clv_365d[i])
        assert views[cid]["p_alive"] == stored[cid].p_alive
        assert views[cid]["rfm_segment"] == EXPECTED[cid][3]
    assert sorted(int(c.clv_decile or 0) for c in stored.values()) == list(range(1, 11))
    assert np.all((expected.p_alive > 0) & (expected.p_alive <= 1))
    assert sorted(_where(shop, "{fact: p_alive, lte: 1}")) == data.ids
    assert _where(shop, "{fact: p_alive, exists: false}") == ["browser"]


def test_a_second_refresh_gives_the_same_scores(shop: sessionmaker[Session]) -> None:
    first = refresh(shop, "order_placed", NOW)
    second = refresh(shop, "order_placed", NOW)
    assert first.predictions is not None and second.predictions is not None
    assert first.predictions.purchases == second.predictions.purchases
    with shop() as s:
        assert {c.id: c.rfm_segment for c in s.scalars(select(Customer))} == {
            k: v[3] for k, v in EXPECTED.items()
        }


def test_the_commands_refresh_and_validate(pg_url: str) -> None:
    engine = db.make_engine(pg_url)
    _load(db.sessions(engine))
    engine.dispose()
    env = {"DATABASE_URL": pg_url}
    engine = db.make_engine(pg_url)
    queued = text("SELECT count(*) FROM conversion_queue")
    with engine.connect() as conn:
        assert conn.scalar(queued) != 0
    done = cli("insight", "refresh", "--now", "2026-07-01T00:00:00Z", env=env)
    assert done.returncode == 0, done.stderr
    assert "RFM scores for 10 customers; predictions for 10" in done.stdout
    with engine.connect() as conn:
        assert conn.scalar(queued) == 0
    engine.dispose()
    later = [
        track(f"c{i}", "order_placed", "2026-06-15T09:00:00Z", f"later-{i}", total=20)
        for i in (0, 2, 4, 6, 8)
    ]
    engine = db.make_engine(pg_url)
    assert ingest([json.dumps(r) for r in later], "t", db.sessions(engine), NOW).rejected == []
    engine.dispose()
    shown = cli("insight", "validate", "--split", "2026-06-05", "--until", "2026-07-01", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    deciles = json.loads(shown.stdout)["deciles"]
    assert [d["decile"] for d in deciles] == list(range(1, 11))
    assert sum(d["actual"] for d in deciles) == 5
    assert sum(d["predicted"] for d in deciles) > 0
    assert [d["predicted"] for d in deciles] == sorted(d["predicted"] for d in deciles)
    table = cli("insight", "validate", "--split", "2026-06-05", "--until", "2026-07-01", env=env)
    assert "by decile" in table.stdout and "alpha in days" in table.stdout
    early = cli("insight", "validate", "--split", "2026-01-01", "--until", "2026-07-01", env=env)
    assert early.returncode == 1 and "cannot validate" in early.stderr and "Traceback" not in early.stderr
