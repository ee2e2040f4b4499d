"""Custom trait names read the same key on PostgreSQL and SQLite, non-ASCII names included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from automation.definitions.loader import parse_filter
from automation.ingest.load import ingest
from automation.store import db
from automation.store.filter_sql import compile_filter
from automation.store.models import Customer
from tests.harness import identify, utc

PEOPLE = [
    identify("zoe", "2026-01-01T00:00:00Z", prénom="Zoé", 年齢=31, a={"b": "nested"}),
    identify("max", "2026-01-01T00:00:00Z", prénom="Max", **{"a.b": "dotted", 'a"."b': "quoted"}),
    identify("none", "2026-01-01T00:00:00Z", city="Lyon"),
]
CASES = [
    ("{trait: prénom, eq: Zoé}", ["zoe"]),
    ("{trait: prénom, exists: true}", ["max", "zoe"]),
    ("{trait: 年齢, gte: 30}", ["zoe"]),
    ("{not: {trait: prénom, eq: Zoé}}", ["max", "none"]),
    ("{trait: a.b, eq: dotted}", ["max"]),  # a dotted name is one key, never a path
    ("{trait: a.b, exists: true}", ["max"]),
    ("{trait: a, exists: true}", ["zoe"]),
]


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/l.db"
    engine = db.make_engine(url)
    db.upgrade(engine)
    yield db.sessions(engine)
    engine.dispose()


def _ids(sessions: sessionmaker[Session], where: str) -> list[str]:
    condition = compile_filter(parse_filter(where, "--where"))
    with sessions() as s:
        return list(s.scalars(select(Customer.id).where(condition).order_by(Customer.id)))


@pytest.mark.parametrize(("where", "expected"), CASES)
def test_trait_names_match_the_same_customers_on_both_databases(
    database: sessionmaker[Session], where: str, expected: list[str]
) -> None:
    result = ingest([json.dumps(p) for p in PEOPLE], "t", database, utc("2026-02-01T00:00:00Z"))
    assert result.rejected == []
    assert _ids(database, where) == expected


def test_sqlite_traits_stored_escaped_are_rewritten_by_the_migration(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path}/old.db")
    cfg = db.alembic_config(engine)
    command.upgrade(cfg, "sqlite_unescaped_traits-1")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO customers (id, traits, trait_times, order_count, lifetime_value,"
                " email_opt_in, sms_opt_in, created_at, updated_at)"
                " VALUES ('zoe', :traits, '{}', 0, 0, 0, 0, '2026-01-01', '2026-01-01')"
            ),
            {"traits": json.dumps({"prénom": "Zoé"})},  # what older releases wrote: "pr\\u00e9nom"
        )
    sessions = db.sessions(engine)
    assert _ids(sessions, "{trait: prénom, eq: Zoé}") == []
    command.upgrade(cfg, "head")
    assert _ids(sessions, "{trait: prénom, eq: Zoé}") == ["zoe"]
    engine.dispose()
