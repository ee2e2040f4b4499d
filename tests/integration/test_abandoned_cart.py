"""The shipped `abandoned_cart` end to end: real PostgreSQL, Redis, the SendGrid and Twilio SDKs at the stand-ins."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from automation.config import load_settings
from automation.core.statuses import DeliveryStatus, EnrollmentState
from automation.insight import reporting
from automation.store.models import Enrollment
from tests.conftest import ROOT
from tests.deliverykit import kit_env, person
from tests.harness import Flow, cli, track, utc
from tests.standins import SendGridStandIn, TwilioStandIn

__all__ = ["kit_env"]

T0 = "2026-11-22T12:00:00Z"
REMINDER = "2026-11-22T16:00:00Z"  # four hours after the checkout
TEXT = "2026-11-23T16:00:00Z"  # a day after the reminder
ITEMS = [{"sku": "NW-ETH-250", "name": "Ethiopia Guji, 250 g", "quantity": 2}]


@pytest.fixture
def carts(kit_env: dict[str, str]) -> Iterator[Flow]:
    shutil.copy(ROOT / "journeys" / "abandoned_cart.yaml", Path(kit_env["AUTOMATION_JOURNEYS_DIR"]))
    for name in ("cart_reminder", "cart_sms"):
        shutil.copytree(ROOT / "templates" / name, Path(kit_env["AUTOMATION_TEMPLATES_DIR"]) / name)
    f = Flow(load_settings())
    yield f
    f.close()


def checkout(cid: str, ts: str = T0) -> dict[str, object]:
    return track(cid, "checkout_started", ts, f"co-{cid}", cart_id=f"cart-{cid}", items=ITEMS, total=29.0)


def order(cid: str, cart: str, ts: str) -> dict[str, object]:
    return track(cid, "order_placed", ts, f"order-{cid}-{cart}", cart_id=cart, total=29.0)


def sent(flow: Flow, step: str) -> set[str]:
    return {
        d.customer_id
        for d in flow.deliveries(journey_id="abandoned_cart", step_id=step)
        if d.status == DeliveryStatus.SENT
    }


def test_a_cart_not_ordered_gets_the_email_then_one_text_an_order_of_it_ends_the_journey(
    carts: Flow, sendgrid: SendGridStandIn, twilio: TwilioStandIn, kit_env: dict[str, str]
) -> None:
    flow = carts
    # ada orders her cart within the hour; bob and cy never do (only bob takes texts);
    # dee orders after the reminder; eve orders, but another cart.
    flow.ingest(
        [person(c) for c in ("ada", "bob", "dee", "eve")]
        + [person("cy", sms_opt_in=False)]
        + [checkout(c) for c in ("ada", "bob", "cy", "dee", "eve")]
    )
    flow.run(T0)
    (bob,) = reporting.customer(flow.runtime.sessions, "bob", catalog=flow.runtime.catalog).in_flight
    assert (bob["step"], bob["waits_for"]) == ("1 checkout-done", "for order_placed (cart_id cart-bob)")
    assert bob["until"] == utc(REMINDER)
    flow.ingest(
        [
            order("ada", "cart-ada", "2026-11-22T13:00:00Z"),
            order("eve", "cart-other", "2026-11-22T13:00:00Z"),
        ],
        now="2026-11-22T13:00:00Z",
    )
    flow.run("2026-11-22T13:00:00Z")

    flow.run(REMINDER)
    assert sent(flow, "cart-reminder") == {"bob", "cy", "dee", "eve"}
    reminder = next(m for m in sendgrid.messages() if m["to"] == "bob@example.com")
    assert "2 x Ethiopia Guji, 250 g" in reminder["text"] and "Ethiopia Guji, 250 g" in reminder["html"]
    assert reminder["subject"] == "Bob, your cart is waiting at Northwind Coffee"

    flow.ingest([order("dee", "cart-dee", "2026-11-23T09:00:00Z")], now="2026-11-23T09:00:00Z")
    flow.run("2026-11-23T09:00:00Z")
    flow.run(TEXT)
    assert sent(flow, "cart-sms") == {"bob", "eve"}
    (cy_text,) = flow.deliveries(journey_id="abandoned_cart", step_id="cart-sms", customer_id="cy")
    assert cy_text.status == DeliveryStatus.SKIPPED
    texted = {f["To"]: f["Body"] for f in (r.body for r in twilio.accepted)}
    assert len(texted) == 2 and all("your cart is still waiting" in b for b in texted.values())
    assert len(sendgrid.messages()) == 4  # one email each, no second one

    with flow.runtime.sessions() as s:
        states = {e.customer_id: (e.state, e.converted_at is not None) for e in s.scalars(select(Enrollment))}
    assert states["ada"] == (EnrollmentState.EXITED, True)
    assert states["dee"] == (EnrollmentState.EXITED, True)
    assert states["bob"][0] == EnrollmentState.COMPLETED and states["eve"][0] == EnrollmentState.COMPLETED

    out = cli("status", "--journey", "abandoned_cart", env=kit_env)
    assert out.returncode == 0, out.stderr
    (row,) = reporting.status(flow.runtime.sessions, flow.runtime.catalog, journey_id="abandoned_cart")
    assert (row.entered, row.goal_exits) == (5, 2)
    numbers = {s.id: s.number for s in row.steps}
    assert numbers == {
        "checkout-done": "1",
        "cart-reminder": "1.timed_out.1",
        "still-not-ordered": "1.timed_out.2",
        "cart-sms": "1.timed_out.2.timed_out.1",
    }
    assert "1.timed_out.2.timed_out.1" in out.stdout


def test_status_counts_the_carts_waiting_at_each_wait_for(carts: Flow, kit_env: dict[str, str]) -> None:
    flow = carts
    flow.ingest(
        [person(c) for c in ("ada", "bob")] + [checkout("ada"), checkout("bob", "2026-11-22T13:00:00Z")]
    )
    flow.run("2026-11-22T13:00:00Z")
    flow.run("2026-11-22T16:30:00Z")  # ada's four hours are up, bob's are not
    (row,) = reporting.status(flow.runtime.sessions, flow.runtime.catalog, journey_id="abandoned_cart")
    waiting = {s.id: s.waiting for s in row.steps}
    assert (waiting["checkout-done"], waiting["still-not-ordered"]) == (1, 1)
