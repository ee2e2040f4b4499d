"""A large audience streams: bounded memory, one transaction per chunk, on real PostgreSQL."""

from __future__ import annotations

import time
import tracemalloc

from sqlalchemy import Engine, func, select, text

from automation.campaigns import campaign as campaigns
from automation.definitions.catalog import load_catalog
from automation.store.models import Campaign, Customer, Enrollment
from tests.conftest import ROOT
from tests.harness import utc

AUDIENCE = 200_000


def _many_customers(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO customers (id, email, timezone, tier, email_opt_in, sms_opt_in, traits,
                                       trait_times, order_count, lifetime_value, created_at, updated_at)
                SELECT 'm' || lpad(g::text, 7, '0'), 'm' || g || '@example.com', 'Europe/Paris',
                       CASE WHEN g % 10 = 0 THEN 'gold' ELSE 'silver' END, true, false, '{}'::jsonb,
                       '{}'::jsonb, 0, 0, now(), now()
                FROM generate_series(1, :n) AS g
                """
            ),
            {"n": n},
        )


def test_enrolling_a_large_audience_streams_in_bounded_memory(engine: Engine, sessions) -> None:
    _many_customers(engine, AUDIENCE)
    catalog = load_catalog(ROOT / "journeys", ROOT / "templates")
    visible_during_launch: list[int] = []

    def progress(_n: int) -> None:
        # Another connection already sees earlier chunks: each chunk is committed on its own.
        with engine.connect() as other:
            visible_during_launch.append(int(other.scalar(select(func.count()).select_from(Enrollment)) or 0))

    tracemalloc.start()
    began = time.monotonic()
    result = campaigns.launch(
        sessions,
        catalog,
        "seasonal_offer",
        now=utc("2026-11-23T10:00:00Z"),
        launched_by="bench",
        campaign_id="big",
        progress=progress,
    )
    elapsed = time.monotonic() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    # What merely holding the audience's ids would take, measured the same way.
    tracemalloc.start()
    with sessions() as s:
        held = s.scalars(select(Customer.id)).all()
    _, holding = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del held

    assert result.enrolled == result.audience_size == AUDIENCE
    print(
        f"\nenrolled {AUDIENCE} in {elapsed:.1f} s ({AUDIENCE / elapsed:,.0f}/s), peak traced "
        f"{peak / 1e6:.1f} MB; holding the ids alone: {holding / 1e6:.1f} MB"
    )
    assert peak < holding / 4, f"peak traced memory {peak / 1e6:.1f} MB"
    assert len(visible_during_launch) == AUDIENCE // campaigns.CHUNK
    assert visible_during_launch[0] == campaigns.CHUNK
    assert visible_during_launch == sorted(visible_during_launch)
    with sessions() as s:
        assert s.get(Campaign, "big").audience_size == AUDIENCE  # type: ignore[union-attr]

    # The filter runs in the database too, and a relaunch streams through without enrolling anyone.
    gold = campaigns.count_audience(
        sessions,
        catalog.journeys["seasonal_offer"],
        campaigns.parse_where("{trait: tier, eq: gold}"),
        None,
        utc("2026-11-23T10:00:00Z"),
    )
    assert gold == AUDIENCE // 10
    again = campaigns.launch(
        sessions,
        catalog,
        "seasonal_offer",
        now=utc("2026-11-23T11:00:00Z"),
        launched_by="bench",
        campaign_id="big",
    )
    assert (again.enrolled, again.audience_size, again.resumed) == (0, AUDIENCE, True)
