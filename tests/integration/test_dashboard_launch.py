"""A campaign launched from the dashboard: the request only records it; the scheduler's ticks enroll it.

Real PostgreSQL, Redis and the SendGrid SDK against its stand-in; the ticks run at a given `now`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from automation.campaigns import campaign as campaigns
from automation.campaigns import queued
from automation.config import Settings
from automation.core.statuses import CampaignStatus
from automation.store.models import AuditEntry, Campaign, Enrollment
from tests.harness import Flow, identify
from tests.integration.test_dashboard_http import EDITOR, NOW, client, clock, sign_in, users
from tests.standins import SendGridStandIn

__all__ = ["client", "clock", "users"]  # the signed-in app of the HTTP tests

GOLD = [f"gold-{n:02d}" for n in range(12)]
TICK = "2026-11-22T12:00:01Z"


@pytest.fixture
def flow(settings: Settings) -> Iterator[Flow]:
    f = Flow(settings)
    people = [(c, "gold") for c in GOLD] + [("silver-1", "silver")]
    f.ingest(
        [
            identify(c, "2026-11-01T00:00:00Z", email=f"{c}@example.com", email_opt_in=True, tier=tier)
            for c, tier in people
        ]
    )
    yield f
    f.close()


def _launch(client: TestClient, csrf: str, campaign_id: str) -> str:
    done = client.post(
        "/app/campaigns/launch",
        data={
            "journey": "seasonal_offer",
            "where": "{trait: tier, eq: gold}",
            "campaign_id": campaign_id,
            "expected": str(len(GOLD)),
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    return done.headers["location"]


def _enrolled(s: Session, campaign_id: str) -> int:
    return int(s.scalar(select(func.count()).where(Enrollment.campaign_id == campaign_id)) or 0)


def test_the_launch_request_only_records_the_campaign_a_double_submit_launches_once_and_a_tick_mails_it(
    client: TestClient, sessions: sessionmaker[Session], flow: Flow, sendgrid: SendGridStandIn
) -> None:
    csrf = sign_in(client, EDITOR)
    where = _launch(client, csrf, "gold-winter")
    assert where == "/app/campaigns/gold-winter"
    assert _launch(client, csrf, "gold-winter") == where
    with sessions() as s:
        row = s.get(Campaign, "gold-winter")
        assert row is not None
        assert (row.status, row.confirmed_audience, row.audience_size) == (CampaignStatus.ENROLLING, 12, 0)
        assert _enrolled(s, "gold-winter") == 0
        audit = list(s.scalars(select(AuditEntry).where(AuditEntry.target_id == "gold-winter")))
    assert [(a.action, a.actor) for a in audit] == [("launched", EDITOR[0])]
    page = client.get(where).text
    assert "0 of the 12 confirmed customers enrolled so far" in page
    assert 'hx-trigger="every 3s"' in page

    report = flow.run(TICK)
    assert report.enrolled["seasonal_offer"] == 12
    assert sorted(m["to"] for m in sendgrid.messages()) == sorted(f"{c}@example.com" for c in GOLD)
    flow.run("2026-11-22T12:05:00Z")
    assert len(sendgrid.messages()) == 12
    with sessions() as s:
        row = s.get(Campaign, "gold-winter")
        assert row is not None and (row.status, row.audience_size) == (CampaignStatus.LAUNCHED, 12)
    page = client.get(where).text
    assert "12 customers" in page and "hx-trigger" not in page
    assert re.search(r"<dd>launched", page)


def test_each_tick_enrolls_a_few_pages_resuming_after_the_last_and_a_cancel_stops_the_rest(
    client: TestClient,
    sessions: sessionmaker[Session],
    flow: Flow,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(campaigns, "CHUNK", 5)
    csrf = sign_in(client, EDITOR)
    _launch(client, csrf, "first")
    _launch(client, csrf, "second")
    catalog = flow.runtime.catalog
    assert queued.enroll_pending(sessions, catalog, NOW, chunks=1) == {"seasonal_offer": 5}
    with sessions() as s:
        row = s.get(Campaign, "first")
        assert row is not None and (row.audience_size, row.enrolled_through) == (5, GOLD[4])
    assert "5 of the 12 confirmed" in client.get("/app/campaigns/first").text
    assert queued.enroll_pending(sessions, catalog, NOW, chunks=3) == {"seasonal_offer": 7 + 5}
    with sessions() as s:
        done, other = s.get(Campaign, "first"), s.get(Campaign, "second")
        assert done is not None and other is not None
        assert (done.status, done.audience_size) == (CampaignStatus.LAUNCHED, 12)
        assert (other.status, other.audience_size) == (CampaignStatus.ENROLLING, 5)
    client.post("/app/campaigns/second/cancel", data={"csrf_token": csrf})
    assert queued.enroll_pending(sessions, catalog, NOW) == {}
    with sessions() as s:
        assert _enrolled(s, "first") == 12 and _enrolled(s, "second") == 5
        other = s.get(Campaign, "second")
        assert other is not None and other.status == CampaignStatus.CANCELLED
