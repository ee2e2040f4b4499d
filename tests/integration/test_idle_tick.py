"""An idle tick reads few rows: anniversaries already enrolled this year are left out in SQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from automation.config import Settings, load_settings
from automation.enroll import anniversary
from tests.harness import Flow, identify, utc

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture
def flow(env: dict[str, str]) -> Iterator[Flow]:
    settings: Settings = load_settings(journeys_dir=BENCH / "journeys", templates_dir=BENCH / "templates")
    f = Flow(settings)
    yield f
    f.close()


def test_an_enrolled_anniversary_is_not_read_again(flow: Flow) -> None:
    flow.ingest(
        [
            identify(
                "a",
                "2024-01-01T00:00:00Z",
                email="a@example.com",
                email_opt_in=True,
                timezone="UTC",
                signed_up_at="2024-11-22T08:00:00Z",
            ),
            identify(
                "b",
                "2024-01-01T00:00:00Z",
                email="b@example.com",
                email_opt_in=True,
                timezone="Asia/Tokyo",
                signed_up_at="2023-11-22T08:00:00Z",
            ),
        ]
    )
    # Signed up late on Nov 21 UTC, which was Nov 22 in Tokyo and in Auckland; early on Nov 23 UTC,
    # still Nov 22 in Honolulu (a day before its 09:00 there comes, so not yet due).
    flow.ingest(
        [
            identify(
                cid,
                "2024-01-01T00:00:00Z",
                email=f"{cid}@example.com",
                email_opt_in=True,
                timezone=zone,
                signed_up_at=at,
            )
            for cid, zone, at in (
                ("t", "Asia/Tokyo", "2023-11-21T23:30:00Z"),
                ("n", "Pacific/Auckland", "2022-11-21T13:00:00Z"),
                ("h", "Pacific/Honolulu", "2023-11-23T05:00:00Z"),
            )
        ]
    )
    journey = flow.runtime.catalog.journeys["bench_signup_anniversary"]
    now = utc("2026-11-22T12:00:00Z")
    scope = flow.runtime.catalog.scope("UTC")
    with flow.runtime.sessions() as s:
        read = {r.id for r in s.execute(anniversary.KIND.statement(s, journey, now, scope))}
    assert {"a", "b", "t", "n"} <= read and "h" not in read

    assert flow.tick("2026-11-22T12:00:00Z").enrolled["bench_signup_anniversary"] == 4
    later = utc("2026-11-22T12:01:00Z")
    with flow.runtime.sessions() as s:
        assert list(s.execute(anniversary.KIND.statement(s, journey, later, scope))) == []
    assert flow.tick("2026-11-22T12:01:00Z").enrolled["bench_signup_anniversary"] == 0


def test_around_new_year_both_years_stay_candidates(flow: Flow) -> None:
    flow.ingest(
        [
            identify(
                "c",
                "2024-01-01T00:00:00Z",
                email="c@example.com",
                email_opt_in=True,
                timezone="UTC",
                signed_up_at="2024-12-31T08:00:00Z",
            )
        ]
    )
    assert flow.tick("2025-12-31T12:00:00Z").enrolled["bench_signup_anniversary"] == 1
    # On Jan 1 the window reaches back into the old year: the SQL pre-filter steps aside,
    # and the enrollment already made for 2025 is still recognised.
    assert flow.tick("2026-01-01T12:00:00Z").enrolled["bench_signup_anniversary"] == 0
