"""The scheduler's daily insight refresh: at AUTOMATION_INSIGHT_AT, UTC, default 03:00."""

from __future__ import annotations

import datetime as dt

import pytest

from automation.config import Settings
from automation.processes.scheduler import daily_at


def _next(at: dt.time, now: str) -> dt.datetime:
    fire = daily_at(at).get_next_fire_time(None, dt.datetime.fromisoformat(now))
    assert fire is not None
    return fire.astimezone(dt.UTC)


def test_the_refresh_runs_at_three_utc_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTOMATION_INSIGHT_AT", raising=False)
    at = Settings().insight_at
    assert at == dt.time(3, 0)
    assert _next(at, "2026-11-22T02:59:00+00:00") == dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)
    assert _next(at, "2026-11-22T03:00:01+00:00") == dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)


def test_the_time_of_day_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATION_INSIGHT_AT", "22:30")
    at = Settings().insight_at
    assert _next(at, "2026-11-22T23:00:00+01:00") == dt.datetime(2026, 11, 22, 22, 30, tzinfo=dt.UTC)
