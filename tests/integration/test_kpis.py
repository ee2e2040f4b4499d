"""`automation kpis` and `kpis cohorts` against a hand-computed fixture, on PostgreSQL and SQLite.

Period [2026-01-01, 2026-07-01), active window 90 days (active at the end: an
order from 2026-04-02; at the start: from 2025-10-03).

    a: 2025-11-15 $10, 2026-02-01 $20, 2026-06-20 $30   active at start and end
    b: 2025-12-01 $50                                   active at start, lapsed
    c: 2026-03-01 $40, 2026-03-15 $60                   new; converted in a journey
    d: no order
    f: 2026-05-01 $25                                   new, active at end
    e: first seen 2026-07-15, order 2026-08-01 $100     after the period
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy.orm import Session, sessionmaker

from automation.core import kpis as maths
from automation.core.assignment import in_global_control
from automation.ingest.load import ingest
from automation.insight import kpis as counting
from automation.store import db
from automation.store.models import Enrollment
from tests.harness import cli, identify, track, utc

SINCE, UNTIL, WINDOW = utc("2026-01-01T00:00:00Z"), utc("2026-07-01T00:00:00Z"), dt.timedelta(days=90)
ORDERS = [
    ("a", "2025-11-15", 10),
    ("a", "2026-02-01", 20),
    ("a", "2026-06-20", 30),
    ("b", "2025-12-01", 50),
    ("c", "2026-03-01", 40),
    ("c", "2026-03-15", 60),
    ("f", "2026-05-01", 25),
]


def _load(sessions: sessionmaker[Session]) -> None:
    records = [identify(cid, email=f"{cid}@example.com") for cid in "abcdf"]
    records += [
        track(cid, "order_placed", f"{day}T12:00:00Z", f"o-{cid}-{day}", total=t) for cid, day, t in ORDERS
    ]
    assert ingest([json.dumps(r) for r in records], "t", sessions, utc("2025-06-01T00:00:00Z")).rejected == []
    late = [identify("e"), track("e", "order_placed", "2026-08-01T12:00:00Z", "o-e", total=100)]
    assert ingest([json.dumps(r) for r in late], "t", sessions, utc("2026-07-15T00:00:00Z")).rejected == []
    with sessions.begin() as s:
        for key, converted in (("in", "2026-03-02T00:00:00Z"), ("after", "2026-07-05T00:00:00Z")):
            s.add(
                Enrollment(
                    journey_id="inactive_60d",
                    customer_id="c",
                    occurrence_key=key,
                    occurred_at=utc("2026-02-20T00:00:00Z"),
                    entered_at=utc("2026-02-20T00:00:00Z"),
                    state="exited",
                    context={},
                    converted_at=utc(converted),
                )
            )


@pytest.fixture
def shop(either_database: sessionmaker[Session]) -> sessionmaker[Session]:
    _load(either_database)
    return either_database


def test_every_kpi_matches_the_hand_computed_figures(shop: sessionmaker[Session]) -> None:
    with shop() as s:
        figures = maths.kpis(counting.counts(s, "order_placed", SINCE, UNTIL, WINDOW))
    assert figures == {
        "customers": 5,
        "new_customers": 2,
        "active_customers": 2,
        "repeat_purchase_rate": pytest.approx(2 / 3),
        "retention_rate": 0.5,
        "churn_rate": 0.5,
        "average_order_value": pytest.approx(35.0),
        "purchase_frequency": pytest.approx(5 / 3),
        "historical_clv": pytest.approx(235 / 4),
        "orders": 5,
        "revenue": pytest.approx(175.0),
        "journey_conversions": 1,
        "journey_revenue": pytest.approx(40.0),
    }


def test_the_control_group_is_drawn_by_the_hash_and_compared_on_revenue(shop: sessionmaker[Session]) -> None:
    revenue = {"a": 50.0, "b": 0.0, "c": 100.0, "d": 0.0, "f": 25.0}
    control = sorted(cid for cid in revenue if in_global_control(cid, 50))
    with shop() as s:
        lift = counting.lift(s, "order_placed", SINCE, UNTIL, 50)
        assert counting.lift(s, "order_placed", SINCE, UNTIL, 0) is None
    assert lift is not None
    assert lift.control_customers == len(control)
    assert lift.control_revenue == pytest.approx(sum(revenue[c] for c in control))
    assert lift.programme_revenue == pytest.approx(175.0 - lift.control_revenue)
    assert lift.control_buyers + lift.programme_buyers == 3


def test_cohorts_show_the_share_of_each_first_order_month_ordering_later(shop: sessionmaker[Session]) -> None:
    with shop() as s:
        active, sizes = counting.cohorts(s, "order_placed", UNTIL)
    assert maths.retention_matrix(active, sizes) == {
        "2025-11": [1.0, 0, 0, 1.0, 0, 0, 0, 1.0],
        "2025-12": [1.0],
        "2026-03": [1.0],
        "2026-05": [1.0],
    }


def test_the_command_prints_the_kpis_and_the_cohorts(pg_url: str) -> None:
    engine = db.make_engine(pg_url)
    _load(db.sessions(engine))
    engine.dispose()
    env = {"DATABASE_URL": pg_url, "AUTOMATION_GLOBAL_HOLDOUT_PCT": "0"}
    shown = cli(
        "kpis", "--since", "2026-01-01", "--until", "2026-07-01", "--active-window", "90d", "--json", env=env
    )
    assert shown.returncode == 0, shown.stderr
    payload = json.loads(shown.stdout)
    assert (payload["retention_rate"], payload["new_customers"], payload["control_group"]) == (0.5, 2, None)
    text = cli("kpis", "--since", "2026-01-01", "--until", "2026-07-01", "--active-window", "90d", env=env)
    assert "repeat_purchase_rate" in text.stdout and "66.7%" in text.stdout
    matrix = cli("kpis", "cohorts", "--until", "2026-07-01", "--json", env=env)
    assert json.loads(matrix.stdout)["cohorts"][0] == {
        "cohort": "2025-11",
        "customers": 1,
        "retention": [1.0, 0, 0, 1.0, 0, 0, 0, 1.0],
    }
    bad = cli("kpis", "--active-window", "soon", env=env)
    assert bad.returncode != 0 and "bad duration" in bad.stderr and "Traceback" not in bad.stderr
