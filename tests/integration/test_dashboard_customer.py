"""A customer's page: their segment and predictions after `insight refresh`, and their loyalty account."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session, sessionmaker

from automation.config import Settings
from automation.ingest.load import ingest
from automation.insight.refresh import refresh
from automation.loyalty import operations
from automation.processes.runtime import build_runtime
from automation.store.models import Customer
from automation.web.dashboard.accounts import Role, User
from automation.web.dashboard.app import Dashboard
from automation.web.dashboard.pages import Ask
from tests.harness import identify, track, utc

NOW = utc("2026-11-22T12:00:00Z")


def _page(settings: Settings, sessions: sessionmaker[Session], customer_id: str) -> str:
    dashboard = Dashboard(settings, sessions, lambda: NOW)
    ask = Ask(User(1, "v@example.com", Role.VIEWER), NOW, path={"customer_id": customer_id})
    return dashboard.render(dashboard.views.customer(ask), None)


def test_the_customer_page_shows_the_segment_and_predictions_once_scored_and_the_loyalty_account(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    runtime = build_runtime(settings)
    programme = runtime.catalog.programme
    runtime.engine.dispose()
    records = [identify(f"c{n}", "2026-01-01T00:00:00Z", email=f"c{n}@example.com") for n in range(3)] + [
        track(f"c{n}", "order_placed", f"2026-{m:02d}-0{n + 1}T10:00:00Z", f"o{n}-{m}", total=20 + n)
        for n in range(3)
        for m in range(1, 12, n + 1)
    ]
    lines = [json.dumps(r) for r in records]
    assert ingest(lines, "test", sessions, NOW, settings.order_event, programme=programme).rejected == []
    before = _page(settings, sessions, "c0")
    assert "Segment and predictions" not in before
    refresh(sessions, settings.order_event, NOW)
    page = _page(settings, sessions, "c0")
    assert "Segment and predictions" in page
    with sessions() as s:
        customer = s.get(Customer, "c0")
        assert customer is not None and customer.rfm_segment is not None
        loyalty = operations.summary(s, programme, "c0", NOW)
    assert f'<th scope="row">rfm_segment</th><td>{customer.rfm_segment}</td>' in page
    assert f'<th scope="row">rfm_r</th><td>{customer.rfm_r}</td>' in page
    assert loyalty["points"] + loyalty["pending_points"] > 0
    assert f'<th scope="row">points</th><td>{loyalty["points"]}</td>' in page
    assert f'<th scope="row">pending points</th><td>{loyalty["pending_points"]}</td>' in page
    assert f'<th scope="row">tier</th><td>{loyalty["tier"]}</td>' in page
