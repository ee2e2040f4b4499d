"""The bulk PostgreSQL ingest (COPY + set-based SQL) keeps the ORM path's rules exactly."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from automation.ingest import load as ingest_module
from automation.ingest import postgres
from automation.ingest.load import ingest, lane_of
from automation.store import db, erasure
from automation.store.models import Customer, CustomerEventStat, Event
from tests.harness import identify, track, utc

NOW = utc("2026-11-22T12:00:00Z")
TIERS = ["bronze", "silver", "gold", None]


def mixed_records(seed: int = 3, customers: int = 40, count: int = 600) -> list[str]:
    """Identifies out of order, tier changes, repeated and id-less orders, other events, bad lines."""
    rng = random.Random(seed)
    lines: list[str] = []
    for _ in range(count):
        cid = f"c{rng.randrange(customers)}"
        ts = f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"
        kind = rng.random()
        if kind < 0.4:
            traits: dict[str, Any] = {"first_name": rng.choice(["Ada", "Bo", "Cy"])}
            if rng.random() < 0.7:
                traits["tier"] = rng.choice(TIERS)
            if rng.random() < 0.3:
                traits["email"] = f"{cid}.{rng.randrange(3)}@example.com"
            if rng.random() < 0.3:
                traits["favourite"] = rng.choice(["latte", "espresso"])
            if rng.random() < 0.2:
                traits["signed_up_at"] = "2024-02-29T10:00:00+02:00"
            lines.append(json.dumps(identify(cid, ts, **traits)))
        elif kind < 0.8:
            oid = f"o-{rng.randrange(count // 2)}" if rng.random() < 0.8 else None
            lines.append(json.dumps(track(cid, "order_placed", ts, oid, total=rng.randint(1, 90) + 0.5)))
        elif kind < 0.95:
            lines.append(json.dumps(track(cid, "page_viewed", ts, path="/")))
        else:
            lines.append(rng.choice(["{oops", json.dumps({"type": "track", "customer_id": cid})]))
    return lines


def snapshot(sessions: sessionmaker[Session]) -> dict[str, Any]:
    with sessions() as s:
        customers = {
            c.id: (
                c.email,
                c.tier,
                c.first_name,
                c.signed_up_at,
                c.signed_up_md,
                c.traits,
                c.trait_times,
                c.order_count,
                c.lifetime_value,
                c.last_order_at,
            )
            for c in s.scalars(select(Customer))
        }
        events = {(e.event_key, e.customer_id, e.name, e.occurred_at) for e in s.scalars(select(Event))}
        tiers = {
            (e.event_key, json.dumps(e.properties, sort_keys=True))
            for e in s.scalars(select(Event).where(Event.name == "tier_changed"))
        }
        stats = {
            (st.customer_id, st.name): (st.first_at, st.last_at, st.count)
            for st in s.scalars(select(CustomerEventStat))
        }
    return {"customers": customers, "events": events, "tiers": tiers, "stats": stats}


@pytest.mark.parametrize("json_events", [postgres.JSON_EVENTS, 0], ids=["events-as-json", "events-copied"])
def test_bulk_path_matches_the_orm_path_and_is_idempotent(
    engine: Engine,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    json_events: int,
) -> None:
    """Both stagings of a batch's events (one JSON parameter, or COPY above `JSON_EVENTS`) agree."""
    monkeypatch.setattr(postgres, "JSON_EVENTS", json_events)
    lines = mixed_records()
    lite = db.make_engine(f"sqlite:///{tmp_path / 'ref.db'}")
    db.upgrade(lite)
    lite_sessions = db.sessions(lite)

    # In three files, so that later ones update customers known from earlier ones.
    parts = [lines[:200], lines[200:400], lines[400:]]
    pg = [ingest(part, "f.jsonl", sessions, NOW) for part in parts]
    ref = [ingest(part, "f.jsonl", lite_sessions, NOW) for part in parts]

    for got, want in zip(pg, ref, strict=True):
        assert got.rejected == want.rejected
        assert (got.read, got.applied, got.new_events) == (want.read, want.applied, want.new_events)
    expected = snapshot(lite_sessions)
    assert snapshot(sessions) == expected
    assert expected["tiers"], "the data set must contain tier changes"

    again = ingest(lines, "f.jsonl", sessions, NOW)
    assert again.new_events == 0
    assert snapshot(sessions) == expected
    lite.dispose()


def test_a_file_of_tracks_only_keeps_known_customers_traits_as_the_orm_path_does(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """Tracks alone read only the customers' time zones (`_load_zones`); the rows must stay whole."""
    lines = mixed_records(seed=7)
    identifies = [line for line in lines if '"identify"' in line]
    tracks = [line for line in lines if '"identify"' not in line]
    lite = db.make_engine(f"sqlite:///{tmp_path / 'ref.db'}")
    db.upgrade(lite)
    lite_sessions = db.sessions(lite)

    for part in (identifies, tracks):
        ingest(part, "f.jsonl", sessions, NOW)
        ingest(part, "f.jsonl", lite_sessions, NOW)

    got = snapshot(sessions)
    assert got == snapshot(lite_sessions)
    assert any(c[2] for c in got["customers"].values()), "known customers keep their first names"
    assert any(c[7] for c in got["customers"].values()), "and gain their order facts"
    lite.dispose()


@pytest.mark.parametrize("json_events", [postgres.JSON_EVENTS, 0], ids=["events-as-json", "events-copied"])
def test_tracks_without_orders_make_their_unknown_and_forgotten_customers_as_the_orm_path_does(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, json_events: int
) -> None:
    """Tracks alone (`_APPLY_TRACKS`, prepared on the web's engine) look for a customer only where
    they create a row of statistics: a new customer, a new event name of a known one, and a customer
    forgotten since (erasure deletes their statistics) must all end as the ORM path leaves them."""
    monkeypatch.setattr(postgres, "JSON_EVENTS", json_events)
    web = db.make_engine(pg_url, pre_ping=False, prepare=False)
    lite = db.make_engine(f"sqlite:///{tmp_path / 'ref.db'}")
    db.upgrade(lite)
    both = [db.sessions(web), db.sessions(lite)]
    known = [json.dumps(identify(f"c{n}", "2026-11-01T00:00:00Z", first_name="Ada")) for n in range(10)]
    seen = [json.dumps(track(f"c{n}", "page_viewed", "2026-11-02T00:00:00Z", path="/")) for n in range(10)]
    later = [
        json.dumps(track(f"c{n}", name, f"2026-11-03T00:{n:02d}:00Z", path=f"/{n}"))
        for n in range(20)  # c10-c19 are new
        for name in ("page_viewed", "product_viewed")  # a new name for c0-c9
    ]
    for sessions in both:
        ingest(known + seen, "f.jsonl", sessions, NOW)
        with sessions.begin() as s:
            erasure.forget(s, "c3", NOW)
        for _ in range(2):  # the second time, the prepared statement again, and nothing new
            ingest(later, "f.jsonl", sessions, NOW)

    got, want = snapshot(both[0]), snapshot(both[1])
    assert got == want
    assert set(got["customers"]) == {f"c{n}" for n in range(20)}
    assert got["customers"]["c3"][2] is None and got["customers"]["c4"][2] == "Ada"
    assert got["stats"][("c3", "page_viewed")][2] == 1  # its earlier view went with it
    web.dispose()
    lite.dispose()


def test_lanes_over_many_batches_match_one_writer(
    sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches split by customer over concurrent lanes end as one writer's batches of the same size.

    Small batches make many of them, so a customer's records span batches and
    lanes, and order ids shared between customers cross lanes and batches.
    """
    monkeypatch.setattr(ingest_module, "PG_BATCH", 25)
    monkeypatch.setattr(ingest_module, "BATCH", 25)
    lines = mixed_records(seed=5, customers=40, count=1500)
    assert {lane_of(f"c{n}", ingest_module.PG_LANES) for n in range(40)} == set(range(ingest_module.PG_LANES))
    lite = db.make_engine(f"sqlite:///{tmp_path / 'ref.db'}")
    db.upgrade(lite)
    lite_sessions = db.sessions(lite)

    got = ingest(lines, "f.jsonl", sessions, NOW)
    want = ingest(lines, "f.jsonl", lite_sessions, NOW)

    assert got.rejected == want.rejected
    assert (got.read, got.applied, got.new_events) == (want.read, want.applied, want.new_events)
    assert snapshot(sessions) == snapshot(lite_sessions)
    lite.dispose()


def test_a_line_the_database_refuses_is_reported_and_the_rest_land(sessions: sessionmaker[Session]) -> None:
    lines = [
        json.dumps(identify("c1", "2026-01-01T00:00:00Z", email="ada@example.com", tier="gold")),
        json.dumps(identify("c2", "2026-01-01T00:00:00Z", email="x" * 330 + "@example.com")),
        json.dumps(track("c1", "order_placed", "2026-11-22T09:00:00Z", "o-1", total=12.5)),
    ]
    result = ingest(lines, "f.jsonl", sessions, NOW)
    [problem] = result.rejected
    assert problem == "f.jsonl:2: refused by the database: value too long for its field"
    assert (result.applied, result.new_events) == (2, 1)
    with sessions() as s:
        c1 = s.get(Customer, "c1")
        assert c1 is not None and c1.order_count == 1 and str(c1.lifetime_value) == "12.50"
        assert s.get(Customer, "c2") is None
