"""The set-based enrollment on PostgreSQL writes exactly what the candidate path writes, and
`journeys explain` says exactly those customers would enter.

Occurrence keys and contexts are compared to the character (timestamps with
and without microseconds, nested event properties, a `where` on the event),
under each re-entry policy, for the event, tier-change and inactivity triggers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from automation.config import Settings
from automation.definitions.catalog import Catalog, load_catalog
from automation.enroll import entry as enroll
from automation.enroll.kind import Scope
from automation.enroll.kinds import kind_of
from automation.ingest.load import ingest
from automation.insight.explain import explain
from automation.insight.would import Caps
from automation.processes.runtime import open_database
from automation.store.models import Enrollment
from tests.harness import identify, track, utc

BENCH = Path(__file__).resolve().parent.parent / "bench"
NOW = utc("2026-11-22T12:00:00Z")
JOURNEYS = {
    "ev": """id: ev
name: Event
trigger:
  event: {{name: order_placed, lookback: 3d, where: {{channel: web, gift: null}}}}
audience: {{trait: email_opt_in, eq: true}}
{policy}steps:
  - send: {{channel: email, template: bench_note}}
""",
    "up": """id: up
name: Tier up
trigger:
  tier_change: {{direction: up, lookback: 3d}}
{policy}steps:
  - send: {{channel: email, template: bench_note}}
""",
    "lapse": """id: lapse
name: Lapse
trigger:
  inactivity: {{event: order_placed, days: 60, lookback: 3d}}
{policy}steps:
  - wait: {{days: 2}}
  - send: {{channel: email, template: bench_note}}
""",
}


def _records() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n in range(8):
        cid = f"c{n}"
        out.append(
            identify(
                cid, "2020-01-01T00:00:00Z", email=f"{cid}@example.com", email_opt_in=n != 3, tier="bronze"
            )
        )
        out.append(track(cid, "order_placed", f"2026-09-22T1{n}:00:00.{n}25000Z", f"old-{n}"))
        out.append(
            track(cid, "order_placed", f"2026-11-21T0{n}:30:00Z", f"a-{n}", channel="web", items=[{"sku": n}])
        )
        out.append(
            track(cid, "order_placed", f"2026-11-22T0{n}:15:00.5Z", f"b-{n}", channel="web", gift=n % 2)
        )
        out.append(track(cid, "order_placed", "2026-11-20T10:00:00Z", f"c-{n}", channel="shop"))
    out.append(identify("c1", "2026-11-21T09:00:00.25Z", tier="gold"))
    out.append(identify("c2", "2026-11-21T09:00:00Z", tier="gold"))
    out.append(identify("c2", "2026-11-22T09:00:00Z", tier="silver"))
    # A lapse alone: its last order is 60 days and a bit before NOW.
    out.append(identify("quiet", "2020-01-01T00:00:00Z", email="q@example.com", email_opt_in=True))
    out.append(track("quiet", "order_placed", "2026-09-21T23:59:59.999999Z", "q-1"))
    return out


@pytest.fixture
def loaded(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Catalog]:
    folder = tmp_path / "journeys"
    folder.mkdir()
    for name, text in JOURNEYS.items():
        (folder / f"{name}.yaml").write_text(text.format(policy=request.param))
    yield load_catalog(folder, BENCH / "templates")


def _written(s: Session, journey_id: str) -> set[tuple[Any, ...]]:
    rows = s.scalars(select(Enrollment).where(Enrollment.journey_id == journey_id))
    return {
        (e.customer_id, e.occurrence_key, e.occurred_at, e.next_at, e.next_step_id, e.state, repr(e.context))
        for e in rows
    }


@pytest.mark.parametrize(
    "loaded",
    ["", "re_entry: once\n", "re_entry: {cooldown: 30d}\n"],
    indirect=True,
    ids=["each", "once", "cool"],
)
@pytest.mark.parametrize("journey_id", ["ev", "up", "lapse"])
def test_set_based_enrollment_matches_the_candidate_path(
    loaded: Catalog, settings: Settings, journey_id: str
) -> None:
    engine, sessions = open_database(settings)
    ingest([json.dumps(r) for r in _records()], "t", sessions, NOW, settings.order_event)
    journey = loaded.journeys[journey_id]
    scope = Scope(loaded.tier_order, "UTC")
    with sessions() as s:
        people = [f"c{n}" for n in range(8)] + ["quiet"]
        caps = Caps.from_settings(settings)
        said = {c for c in people if explain(s, journey, loaded, c, NOW, "UTC", caps).enters}
        by_python = enroll.insert_enrollments(
            s, journey, kind_of(journey).candidates(s, journey, NOW, scope), NOW
        )
        expected = _written(s, journey_id)
        s.rollback()
    assert said == {row[0] for row in expected}  # explain agrees with the tick on who enters
    with sessions() as s:
        assert enroll.enroll_set(s, journey, NOW, scope) == len(by_python)
        assert _written(s, journey_id) == expected
        assert enroll.enroll_set(s, journey, NOW, scope) == 0
        s.rollback()
    assert expected
    engine.dispose()
