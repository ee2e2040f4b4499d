"""The overview's KPI trends (daily snapshots taken by `insight refresh`) and its coupon-pool warning."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from automation.config import Settings
from automation.insight.refresh import refresh
from automation.loyalty import coupons
from automation.store.models import KpiSnapshot
from automation.web.dashboard import overview
from tests.harness import Flow, identify, track, utc
from tests.integration.test_dashboard_http import VIEWER, client, clock, sign_in, users

__all__ = ["client", "clock", "users"]  # the signed-in app of the HTTP tests

NOW = utc("2026-11-22T12:00:00Z")


@pytest.fixture
def flow(settings: Settings) -> Iterator[Flow]:
    f = Flow(settings)
    yield f
    f.close()


def _orders(flow: Flow) -> None:
    flow.ingest(
        [
            identify("c1", "2026-01-01T00:00:00Z", email="c1@example.com"),
            identify("c2", "2026-01-01T00:00:00Z", email="c2@example.com"),
            track("c1", "order_placed", "2026-11-01T10:00:00Z", "o1", total=40),
            track("c1", "order_placed", "2026-11-10T10:00:00Z", "o2", total=60),
            track("c2", "order_placed", "2026-11-12T10:00:00Z", "o3", total=20),
        ]
    )


def test_insight_refresh_keeps_one_kpi_snapshot_a_day_and_the_overview_draws_each_kpi_from_them(
    settings: Settings, sessions: sessionmaker[Session], flow: Flow
) -> None:
    _orders(flow)
    refresh(sessions, settings.order_event, NOW - dt.timedelta(days=1))
    refresh(sessions, settings.order_event, NOW - dt.timedelta(hours=2))
    flow.ingest([track("c2", "order_placed", "2026-11-22T10:30:00Z", "o4", total=80)])
    refresh(sessions, settings.order_event, NOW)
    with sessions() as s:
        rows = list(s.scalars(select(KpiSnapshot).order_by(KpiSnapshot.day)))
        assert [(r.day, r.taken_at) for r in rows] == [
            (dt.date(2026, 11, 21), NOW - dt.timedelta(days=1)),
            (dt.date(2026, 11, 22), NOW),
        ]
        assert (rows[0].figures["orders"], rows[1].figures["orders"]) == (3, 4)
        assert rows[1].figures["revenue"] == 200.0
        trends, day = overview.trends(s, NOW)
    assert day == dt.date(2026, 11, 22)
    by_name = {t.name: t for t in trends}
    assert by_name["orders"].latest == "4"
    assert by_name["repeat_purchase_rate"].latest == "100.0%"
    assert by_name["revenue"].latest == "200.00"
    line = by_name["orders"].chart.series[0].values
    assert len(line) == overview.DAYS
    assert line[-2:] == [3, 4] and set(line[:-2]) == {None}


def test_the_overview_lists_every_kpi_and_says_when_there_is_no_snapshot_yet(
    settings: Settings, sessions: sessionmaker[Session], flow: Flow, client: TestClient
) -> None:
    sign_in(client, VIEWER)
    assert "No KPI snapshot yet" in client.get("/app/").text
    _orders(flow)
    refresh(sessions, settings.order_event, NOW)
    page = client.get("/app/").text
    assert "No KPI snapshot yet" not in page
    for label in ("active customers", "retention rate", "historical clv", "journey revenue"):
        assert f'<span class="kpi-label">{label}</span>' in page


def test_a_coupon_pool_below_its_low_water_needs_attention_until_it_is_refilled(
    sessions: sessionmaker[Session], client: TestClient
) -> None:
    sign_in(client, VIEWER)
    with sessions.begin() as s:
        coupons.generate(s, "welcome10", "W-######", 3, NOW, low_water=5)
    page = client.get("/app/").text
    assert "Coupon pool <strong>welcome10</strong> is running low: 3 codes left" in page
    assert "low water of 5" in page
    with sessions.begin() as s:
        coupons.generate(s, "welcome10", "W-######", 2, NOW)
    page = client.get("/app/").text
    assert "welcome10" not in page
    assert "no coupon pool running low" in page
