"""`automation status` and `automation customers show` against a hand-built ledger."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from automation.core.statuses import DeliveryStatus
from automation.definitions.catalog import load_catalog
from automation.insight import reporting
from automation.store.models import Customer, Delivery, Enrollment, Event
from automation.web.dashboard import journey_stats
from tests.conftest import ROOT
from tests.harness import cli, utc

T0 = utc("2026-11-01T00:00:00Z")


def _customer(cid: str, **kw: Any) -> Customer:
    return Customer(
        id=cid, traits={"favourite_roast": "dark"}, trait_times={}, created_at=T0, updated_at=T0, **kw
    )


def _enrollment(eid: int, journey: str, cid: str, state: str = "completed", **kw: Any) -> Enrollment:
    return Enrollment(
        id=eid,
        journey_id=journey,
        customer_id=cid,
        occurrence_key=f"k{eid}",
        occurred_at=T0,
        entered_at=T0,
        state=state,
        context={},
        **kw,
    )


def _delivery(did: int, eid: int, journey: str, cid: str, status: str, due: str, **kw: Any) -> Delivery:
    return Delivery(
        id=did,
        enrollment_id=eid,
        step_id=f"step-{did}",
        journey_id=journey,
        customer_id=cid,
        channel="email",
        template=journey,
        transactional=False,
        status=status,
        due_at=utc(due),
        attempts=0,
        created_at=T0,
        updated_at=T0,
        **kw,
    )


def _order(key: str, cid: str, at: str) -> Event:
    return Event(
        event_key=key,
        customer_id=cid,
        name="order_placed",
        occurred_at=utc(at),
        properties={},
        received_at=T0,
    )


@pytest.fixture
def ledger(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    pp, so = "post_purchase_thanks", "seasonal_offer"
    with sessions.begin() as s:
        s.add_all(
            [
                _customer(
                    "c1",
                    email="ada@example.com",
                    first_name="Ada",
                    tier="gold",
                    email_opt_in=True,
                    order_count=2,
                ),
                _customer("c2", email="ben@example.com"),
                _customer("c3", email="chen@example.com"),
                _customer("c4", email="dara@example.com"),
            ]
        )
        s.flush()
        s.add_all(
            [
                _enrollment(1, pp, "c1"),
                _enrollment(2, pp, "c2"),
                _enrollment(
                    3, pp, "c3", "active", next_step_id="thanks", next_at=utc("2026-11-16T09:00:00Z")
                ),
                _enrollment(4, pp, "c4"),
                _enrollment(
                    5, pp, "c1", "active", next_step_id="thanks", next_at=utc("2026-11-21T09:00:00Z")
                ),
                _enrollment(6, so, "c3", campaign_id="w1"),
                _enrollment(
                    7,
                    so,
                    "c4",
                    "exited",
                    converted_at=utc("2026-11-13T10:00:00Z"),
                    exit_reason="exit_on:order_placed",
                ),
                _enrollment(8, so, "c1"),
            ]
        )
        s.flush()
        s.add_all(
            [
                # In range (due 9 to 15 November).
                _delivery(
                    1,
                    1,
                    pp,
                    "c1",
                    "sent",
                    "2026-11-10T10:00:00Z",
                    opened_at=utc("2026-11-10T12:00:00Z"),
                    clicked_at=utc("2026-11-10T12:01:00Z"),
                ),
                _delivery(
                    2, 2, pp, "c2", "sent", "2026-11-10T11:00:00Z", opened_at=utc("2026-11-11T08:00:00Z")
                ),
                _delivery(3, 3, pp, "c3", "deferred", "2026-11-11T07:00:00Z"),
                _delivery(4, 4, pp, "c4", "failed", "2026-11-12T10:00:00Z"),
                _delivery(5, 2, pp, "c2", "skipped", "2026-11-09T00:00:00Z"),
                _delivery(6, 4, pp, "c4", "suppressed", "2026-11-14T23:59:59Z"),
                _delivery(7, 3, pp, "c3", "unknown", "2026-11-12T00:00:00Z"),
                _delivery(8, 1, pp, "c1", "claimed", "2026-11-13T00:00:00Z"),
                _delivery(9, 6, so, "c3", "sent", "2026-11-12T09:00:00Z", campaign_id="w1"),
                _delivery(10, 8, so, "c1", "sent", "2026-11-12T09:00:00Z"),
                _delivery(11, 7, so, "c4", "queued", "2026-11-12T09:00:00Z"),
                # Out of range.
                _delivery(12, 5, pp, "c1", "queued", "2026-11-20T10:00:00Z"),
                _delivery(13, 5, pp, "c1", "sent", "2026-11-08T23:59:59Z"),
            ]
        )
        s.add_all(
            [
                _order("o1", "c1", "2026-11-15T10:00:00Z"),  # 5 days after the thank-you, 3 after the offer
                _order("o2", "c2", "2026-12-20T10:00:00Z"),  # 40 days after: outside the 30-day window
                _order("o3", "c3", "2026-11-12T08:00:00Z"),  # before the offer: not a conversion
            ]
        )
    return sessions


def test_status_figures_match_the_ledger(ledger: sessionmaker[Session]) -> None:
    catalog = load_catalog(ROOT / "journeys", ROOT / "templates")
    rows = {
        r.journey_id: r
        for r in reporting.status(ledger, catalog, utc("2026-11-09T00:00:00Z"), utc("2026-11-15T00:00:00Z"))
    }
    pp, so = rows["post_purchase_thanks"], rows["seasonal_offer"]
    assert pp.active == 2 and so.active == 0
    assert pp.deliveries == {
        "queued": 0,
        "sending": 1,
        "sent": 2,
        "deferred": 1,
        "suppressed": 1,
        "skipped": 1,
        "failed": 1,
        "unknown": 1,
        "held_out": 0,
    }
    assert (pp.opened, pp.clicked) == (2, 1)
    assert (pp.sent_enrollments, pp.conversions, pp.conversion_rate, pp.goal_exits) == (2, 1, 0.5, 0)
    assert so.deliveries["sent"] == 2 and so.deliveries["queued"] == 1
    assert (so.sent_enrollments, so.conversions, so.goal_exits) == (2, 1, 1)

    everything = {r.journey_id: r for r in reporting.status(ledger, catalog)}
    assert everything["post_purchase_thanks"].deliveries["sent"] == 3
    assert everything["post_purchase_thanks"].deliveries["queued"] == 1


def test_status_and_customer_commands(ledger: sessionmaker[Session], env: dict[str, str]) -> None:
    result = cli("status", "--since", "2026-11-09T00:00:00Z", "--until", "2026-11-15T00:00:00Z", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["since"] == "2026-11-09T00:00:00+00:00"
    pp = next(j for j in payload["journeys"] if j["journey_id"] == "post_purchase_thanks")
    assert pp["deliveries"]["sent"] == 2 and pp["conversions"] == 1 and pp["conversion_rate"] == 0.5
    assert all(j["conversion_rate"] is None for j in payload["journeys"] if j["goal"] is None)

    table = cli("status", "--since", "2026-11-09")
    assert table.returncode == 0, table.stderr
    line = next(x for x in table.stdout.splitlines() if "post_purchase_thanks" in x)
    assert [c.strip() for c in line.strip("│┃ ").split("│")][:9] == [
        "post_purchase_thanks",
        "2",
        "1",
        "1",
        "2",
        "1",
        "1",
        "1",
        "1",
    ]

    shown = cli("customers", "show", "c1")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "ada@example.com" in out and "favourite_roast" in out and "order_count" in out
    assert (
        "post_purchase_thanks" in out and "thanks" in out and "2026-11-21T09:00:00+00:00" in out
    )  # next step and time
    assert out.index("2026-11-20T10:00:00") < out.index("2026-11-13T00:00:00")  # newest message first
    missing = cli("customers", "show", "nobody")
    assert (missing.returncode, missing.stderr.strip()) == (1, "error: no customer 'nobody'")
    bad = cli("status", "--since", "yesterday")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_the_dashboard_counts_conversions_as_status_does(ledger: sessionmaker[Session]) -> None:
    catalog = load_catalog(ROOT / "journeys", ROOT / "templates")
    since, until = utc("2026-11-09T00:00:00Z"), utc("2026-11-15T00:00:00Z")
    ranged = reporting.status(ledger, catalog, since, until)
    assert reporting.conversions(ledger, catalog, since, until) == sum(r.conversions for r in ranged) > 0
    for row in reporting.status(ledger, catalog):
        if catalog.get(row.journey_id) is None:
            continue
        stages = dict(journey_stats.funnel(ledger, catalog, row.journey_id).stages)
        assert (stages["sent"], stages["converted"]) == (row.sent_enrollments, row.conversions)
        with ledger() as s:  # what the ledger and the enrollments hold, scanned
            mine = Delivery.journey_id == row.journey_id
            sent = select(func.count(func.distinct(Delivery.enrollment_id)))
            entered = select(func.count()).where(Enrollment.journey_id == row.journey_id)
            assert row.sent_enrollments == s.scalar(sent.where(mine, Delivery.status == DeliveryStatus.SENT))
            assert stages["entered"] == row.entered == s.scalar(entered)
