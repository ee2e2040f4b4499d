"""What the README promises about ingest: a track without timestamp takes the time of ingest,
and an unknown time zone lands as the default zone with a warning instead of losing the record."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from automation.store.models import Customer, Event
from tests.harness import cli


def test_a_track_without_timestamp_takes_the_time_of_ingest(
    env: dict[str, str], tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    data = tmp_path / "orders.jsonl"
    data.write_text(
        json.dumps(
            {
                "type": "track",
                "customer_id": "c1",
                "event": "order_placed",
                "event_id": "o-1",
                "properties": {"total": 10, "currency": "EUR"},
            }
        )
        + "\n"
    )
    before = dt.datetime.now(dt.UTC)
    result = cli("ingest", str(data), env=env)
    after = dt.datetime.now(dt.UTC)
    assert result.returncode == 0, result.stderr
    assert "applied 1 (1 new events), rejected 0" in result.stdout
    with sessions() as s:
        (event,) = s.scalars(select(Event).where(Event.event_key == "o-1"))
        assert before <= event.occurred_at <= after


def test_an_unknown_time_zone_lands_as_the_default_zone_with_a_warning(
    env: dict[str, str], tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    data = tmp_path / "people.jsonl"
    data.write_text(
        json.dumps({"type": "identify", "customer_id": "c1", "traits": {"timezone": "Europe/Paris"}})
        + "\n"
        + json.dumps(
            {
                "type": "identify",
                "customer_id": "c2",
                "timestamp": "2026-01-01T00:00:00Z",
                "traits": {"email": "c2@example.com", "timezone": "Mars/Olympus_Mons"},
            }
        )
        + "\n"
    )
    result = cli("ingest", str(data), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == (
        f"{data}:2: warning: traits.timezone is not an IANA time zone; the customer gets the default zone"
    )
    assert "applied 2 (0 new events), rejected 0, 1 with a warning" in result.stdout
    with sessions() as s:
        landed = {c.id: (c.email, c.timezone) for c in s.scalars(select(Customer))}
    assert landed == {"c1": (None, "Europe/Paris"), "c2": ("c2@example.com", None)}
