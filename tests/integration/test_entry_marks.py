"""An event journey's tick reads past its mark and its pending events, and enrols exactly whom the
whole look-back would (`enroll.marks`), on PostgreSQL.

After every tick the candidate path, which reads the whole look-back, must find
nobody left to enrol: not a customer who joined the audience since their event,
an event dated ahead of the tick that came due, one kept out by a cool-down
that ended, a customer identified after their event, nor an event whose
transaction committed after the tick that read past its id.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from automation.config import Settings
from automation.definitions.catalog import Catalog, load_catalog
from automation.enroll import entry as enroll
from automation.enroll import marks
from automation.enroll.kinds import kind_of
from automation.ingest.load import ingest
from automation.processes.runtime import open_database
from automation.processes.tick import tick
from automation.store.erasure import forget
from automation.store.models import Enrollment, EntryMark, EntryPending, Event
from tests.harness import identify, track, utc

BENCH = Path(__file__).resolve().parent.parent / "bench"
T0 = utc("2026-11-22T12:00:00Z")
JOURNEY = """id: ev
name: Event
trigger:
  event: {{name: order_placed, lookback: 3d}}
audience: {{trait: email_opt_in, eq: true}}
{policy}steps:
  - send: {{channel: email, template: bench_note}}
"""


class World:
    def __init__(self, settings: Settings, folder: Path, policy: str) -> None:
        self.settings, self.folder = settings, folder
        self.engine, self.sessions = open_database(settings)
        self.load(JOURNEY.format(policy=policy))

    def load(self, text: str) -> None:
        (self.folder / "ev.yaml").write_text(text)
        self.catalog: Catalog = load_catalog(self.folder, BENCH / "templates")

    def ingest(self, records: list[dict[str, Any]], at: dt.datetime) -> None:
        ingest([json.dumps(r) for r in records], "t", self.sessions, at, self.settings.order_event)

    def tick(self, at: dt.datetime) -> int:
        """One tick at `at`; then the whole look-back read the candidate way finds nobody more."""
        added = tick(self.engine, self.sessions, self.catalog, at, lambda queued: None).enrolled["ev"]
        journey = self.catalog.journeys["ev"]
        with self.sessions() as s:
            missed = kind_of(journey).candidates(s, journey, at, self.catalog.scope("UTC"))
            assert enroll.insert_enrollments(s, journey, missed, at) == []
            s.rollback()
        return added

    def enrolled(self) -> set[tuple[str, str]]:
        with self.sessions() as s:
            rows = s.execute(select(Enrollment.customer_id, Enrollment.occurrence_key))
            return {(c, k) for c, k in rows}

    def customers(self) -> set[str]:
        return {c for c, _ in self.enrolled()}

    def pending(self) -> int:
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(EntryPending)) or 0)


@pytest.fixture
def world(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    w = World(settings, tmp_path, request.param)
    yield w
    w.engine.dispose()


def _customer(cid: str, opted: bool) -> dict[str, Any]:
    return identify(cid, "2020-01-01T00:00:00Z", email=f"{cid}@example.com", email_opt_in=opted)


def _order(cid: str, at: str, key: str) -> dict[str, Any]:
    return track(cid, "order_placed", at, key)


POLICIES = pytest.mark.parametrize(
    "world",
    ["", "re_entry: once\n", "re_entry: {cooldown: 1d}\n"],
    indirect=True,
    ids=["each", "once", "cool"],
)


@POLICIES
def test_what_changed_since_an_event_was_read_still_lets_it_in(world: World) -> None:
    world.ingest(
        [
            _customer("in", True),
            _customer("out", False),
            _order("in", "2026-11-22T11:00:00Z", "in-1"),
            _order("out", "2026-11-22T11:00:00Z", "out-1"),
            _order("ahead", "2026-11-22T15:00:00Z", "ahead-1"),
            _customer("ahead", True),
            _order("stranger", "2026-11-22T11:30:00Z", "stranger-1"),
        ],
        T0,
    )
    assert world.tick(T0) == 1
    assert world.pending() == 3  # out-1 (audience), ahead-1 (not yet occurred), stranger-1 (unknown)
    world.ingest([identify("out", "2026-11-22T12:01:00Z", email_opt_in=True)], T0)
    world.ingest([_customer("stranger", True), _order("in", "2026-11-22T12:05:00Z", "in-2")], T0)
    second = world.tick(T0 + dt.timedelta(minutes=10))
    assert {"out", "stranger"} <= world.customers()
    assert "ahead" not in world.customers()
    world.tick(T0 + dt.timedelta(hours=4))
    assert "ahead" in world.customers()
    # in-2: a second occurrence; a cool-down lets it in once the day since "in" entered has passed.
    world.tick(T0 + dt.timedelta(days=1, minutes=1))
    keys = {k for c, k in world.enrolled() if c == "in"}
    if world.catalog.journeys["ev"].re_entry == "once":
        assert keys == {"once"} and second == 2
    else:
        assert keys == {"in-1", "in-2"}
    world.tick(T0 + dt.timedelta(days=4))
    assert world.pending() == 0  # everything left the look-back


@POLICIES
def test_an_idle_tick_reads_only_past_its_mark(world: World) -> None:
    world.ingest([_customer(f"c{n}", n != 0) for n in range(5)], T0)
    world.ingest([_order(f"c{n}", "2026-11-22T11:00:00Z", f"o-{n}") for n in range(5)], T0)
    assert world.tick(T0) == 4
    with world.sessions() as s:
        mark = s.get(EntryMark, "ev")
        newest = s.scalar(text("SELECT max(id) FROM events"))
        assert mark is not None and mark.last_id == newest
        journey = world.catalog.journeys["ev"]
        assert marks.pool(s, journey, T0 + dt.timedelta(minutes=1)) == marks.Pool(newest)
        assert marks.pool(s, journey, T0 - dt.timedelta(minutes=1)) == marks.Pool(None)
    assert world.pending() == 1
    assert world.tick(T0 + dt.timedelta(minutes=1)) == 0


@pytest.mark.parametrize("world", [""], indirect=True)
def test_an_edit_of_the_entry_rules_reads_the_whole_look_back_again(world: World) -> None:
    world.ingest([_customer("a", True), identify("a", "2020-01-01T00:00:00Z", tier="gold")], T0)
    world.ingest([_customer("b", True), _order("a", "2026-11-21T11:00:00Z", "a-1")], T0)
    world.ingest([_order("b", "2026-11-21T11:00:00Z", "b-1")], T0)
    world.load(
        JOURNEY.format(policy="").replace("{trait: email_opt_in, eq: true}", "{trait: tier, eq: gold}")
    )
    assert world.tick(T0) == 1
    assert world.pending() == 1  # b-1, outside this audience
    world.load(JOURNEY.format(policy=""))
    assert world.tick(T0 + dt.timedelta(minutes=1)) == 1  # b, in the audience now written
    # Back in time: the pending events were pruned at a later `now`, so all is read again.
    world.ingest([_customer("c", False), _order("c", "2026-11-19T13:00:00Z", "c-1")], T0)
    world.tick(T0 + dt.timedelta(hours=2))  # c-1 leaves the look-back's start at this `now`
    world.ingest([identify("c", "2026-11-22T12:30:00Z", email_opt_in=True)], T0)
    assert world.tick(T0 + dt.timedelta(minutes=2)) == 1


@pytest.mark.parametrize("world", [""], indirect=True)
def test_an_event_committed_after_a_later_id_is_not_lost(world: World) -> None:
    world.ingest([_customer("slow", True), _customer("fast", True)], T0)
    held: sessionmaker[Session] = world.sessions
    with held() as slow:
        # The slow writer takes its id first and commits last.
        at = T0 - dt.timedelta(minutes=5)
        slow.add(
            Event(customer_id="slow", event_key="slow-1", name="order_placed", occurred_at=at, received_at=at)
        )
        slow.flush()
        world.ingest([_order("fast", "2026-11-22T11:56:00Z", "fast-1")], T0)
        assert marks.frontier(world.engine) is None
        assert world.tick(T0) == 1
        slow.commit()
    assert world.enrolled() == {("fast", "fast-1")}
    assert world.tick(T0 + dt.timedelta(minutes=1)) == 1
    assert ("slow", "slow-1") in world.enrolled()


def test_the_frontier_is_the_newest_event_when_no_writer_is_in_flight(engine: Engine) -> None:
    # Past psycopg's threshold for preparing a statement that repeats: one round trip each time.
    assert [marks.frontier(engine) for _ in range(8)] == [0] * 8


@pytest.mark.parametrize("world", [""], indirect=True)
def test_an_event_its_where_turns_away_is_not_kept(world: World) -> None:
    world.load(JOURNEY.format(policy="").replace("lookback: 3d}", "lookback: 3d, where: {channel: web}}"))
    world.ingest([_customer("x", False)], T0)
    web, shop = ("2026-11-22T11:00:00Z", "web-1"), ("2026-11-22T11:10:00Z", "shop-1")
    world.ingest([track("x", "order_placed", *web, channel="web"), track("x", "order_placed", *shop)], T0)
    assert world.tick(T0) == 0
    assert world.pending() == 1  # web-1, outside the audience; shop-1 never matches
    world.ingest([identify("x", "2026-11-22T12:01:00Z", email_opt_in=True)], T0)
    assert world.tick(T0 + dt.timedelta(minutes=2)) == 1
    assert world.enrolled() == {("x", "web-1")} and world.pending() == 0


@pytest.mark.parametrize("world", [""], indirect=True)
def test_a_tier_change_read_and_left_out_enters_once_its_customer_is_in_the_audience(world: World) -> None:
    world.load(
        JOURNEY.format(policy="").replace(
            "event: {name: order_placed, lookback: 3d}", "tier_change: {direction: up, lookback: 3d}"
        )
    )
    world.ingest([_customer("u", False), _customer("d", False)], T0)
    world.ingest(
        [
            identify("u", "2026-11-21T09:00:00Z", tier="bronze"),
            identify("d", "2026-11-21T09:00:00Z", tier="gold"),
        ],
        T0,
    )
    world.ingest(
        [
            identify("u", "2026-11-22T09:00:00Z", tier="gold"),
            identify("d", "2026-11-22T09:00:00Z", tier="silver"),
        ],
        T0,
    )
    assert world.tick(T0) == 0
    assert world.pending() == 1  # u's change up, outside the audience; d's down never enters
    world.ingest([identify(c, "2026-11-22T12:01:00Z", email_opt_in=True) for c in ("u", "d")], T0)
    assert world.tick(T0 + dt.timedelta(minutes=2)) == 1
    assert world.customers() == {"u"} and world.pending() == 0


@pytest.mark.parametrize("world", [""], indirect=True)
def test_erasing_a_customer_forgets_their_pending_events(world: World) -> None:
    world.ingest([_customer("gone", False), _order("gone", "2026-11-22T11:00:00Z", "gone-1")], T0)
    world.ingest([_customer("kept", False), _order("kept", "2026-11-22T11:00:00Z", "kept-1")], T0)
    assert world.tick(T0) == 0
    assert world.pending() == 2
    with world.sessions.begin() as s:
        forget(s, "gone", T0)
    assert world.pending() == 1
    world.ingest([identify("gone", "2026-11-22T12:01:00Z", email_opt_in=True)], T0)
    assert world.tick(T0 + dt.timedelta(minutes=1)) == 0  # a new profile: the old event went with the old one
