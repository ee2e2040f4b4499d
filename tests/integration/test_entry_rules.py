"""The rules of entry agree on every path: the tick on PostgreSQL and on SQLite, and `explain`.

An occasion exactly `lookback` old at `now` still enters (the boundary is
inclusive); one just older never does. Each trigger kind with a
look-back is checked on both databases, with the tick and with `explain`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from automation.config import Settings
from automation.definitions.catalog import Catalog, load_catalog
from automation.ingest.load import ingest
from automation.insight.explain import explain
from automation.insight.would import Caps
from automation.processes.runtime import open_database
from automation.processes.tick import tick
from automation.store import db
from automation.store.models import Enrollment
from tests.harness import identify, track, utc

BENCH = Path(__file__).resolve().parent.parent / "bench"
NOW = utc("2026-11-22T12:00:00Z")
CAPS = Caps(email_day=1, email_week=3, sms_day=1)
JOURNEYS = {
    "ev": "trigger:\n  event: {name: order_placed, lookback: 3d}\n",
    "up": "trigger:\n  tier_change: {direction: up, lookback: 3d}\n",
    "lapse": "trigger:\n  inactivity: {event: order_placed, days: 60, lookback: 3d}\n",
    "yearly": "trigger:\n  anniversary: {trait: signed_up_at, at: '12:00', lookback: 3d}\n",
}
# For each journey: the customer whose occasion is exactly 3 days old, and one just older (a
# microsecond; a day for the anniversary, whose moment is a local time of day).
EDGE = {"ev": ("ev-edge", "ev-old"), "up": ("up-edge", "up-old"), "lapse": ("lapse-edge", "lapse-old")}
EDGE["yearly"] = ("yearly-edge", "yearly-old")


def _records() -> list[dict[str, Any]]:
    base = {"email_opt_in": True, "timezone": "UTC"}
    out: list[dict[str, Any]] = []
    for cid in [c for pair in EDGE.values() for c in pair]:
        out.append(identify(cid, "2020-01-01T00:00:00Z", email=f"{cid}@example.com", tier="bronze", **base))
    out += [
        track("ev-edge", "order_placed", "2026-11-19T12:00:00Z", "e-1"),
        track("ev-old", "order_placed", "2026-11-19T11:59:59.999999Z", "e-2"),
        identify("up-edge", "2026-11-19T12:00:00Z", tier="gold"),
        identify("up-old", "2026-11-19T11:59:59.999999Z", tier="gold"),
        track("lapse-edge", "order_placed", "2026-09-20T12:00:00Z", "l-1"),
        track("lapse-old", "order_placed", "2026-09-20T11:59:59.999999Z", "l-2"),
        identify("yearly-edge", "2020-01-01T00:00:00Z", signed_up_at="2024-11-19T12:00:00Z"),
        identify("yearly-old", "2020-01-01T00:00:00Z", signed_up_at="2024-11-18T12:00:00Z"),
    ]
    return out


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    folder = tmp_path / "journeys"
    folder.mkdir()
    for name, trigger in JOURNEYS.items():
        (folder / f"{name}.yaml").write_text(
            f"id: {name}\nname: {name}\n{trigger}steps:\n  - send: {{channel: email, template: bench_note}}\n"
        )
    return load_catalog(folder, BENCH / "templates")


@pytest.fixture(params=["postgresql", "sqlite"])
def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    if request.param == "postgresql":
        settings: Settings = request.getfixturevalue("settings")
        engine, sessions = open_database(settings)
    else:
        engine = db.make_engine(f"sqlite:///{tmp_path / 'lite.db'}")
        db.upgrade(engine)
        sessions = db.sessions(engine)
    ingest([json.dumps(r) for r in _records()], "t", sessions, NOW)
    yield engine, sessions
    engine.dispose()


def test_an_occasion_exactly_lookback_old_enters_by_the_tick_and_by_explain(
    catalog: Catalog, database: tuple[Engine, sessionmaker[Session]]
) -> None:
    engine, sessions = database
    with sessions() as s:
        said = {
            cid: explain(s, catalog.journeys[jid], catalog, cid, NOW, "UTC", CAPS)
            for jid, pair in EDGE.items()
            for cid in pair
        }
    for jid, (edge, old) in EDGE.items():
        assert said[edge].enters, (jid, said[edge].lines)
        assert not said[old].enters
        assert said[old].lines[-1].startswith("look-back:"), (jid, said[old].lines)
    tick(engine, sessions, catalog, NOW, lambda queued: None)
    with sessions() as s:
        entered = {(e.journey_id, e.customer_id) for e in s.scalars(select(Enrollment))}
    assert entered == {(jid, edge) for jid, (edge, _) in EDGE.items()}
