"""The shipped `welcome_series` end to end, its funnel in `automation status`, and `customers show`.

Opens come from real signed SendGrid webhooks; messages go through the real
SDK to the local stand-in.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from automation.config import load_settings
from automation.core.statuses import DeliveryStatus
from automation.insight import reporting
from automation.web.app import create_app
from tests.conftest import ROOT
from tests.deliverykit import kit_env, person
from tests.harness import Flow, cli, track, utc
from tests.standins import SendGridStandIn
from tests.webhooks import PUBLIC_URL, SendGridSigner, batch, sendgrid_event

__all__ = ["kit_env"]

T0 = "2026-11-22T12:00:00Z"
DAY2 = "2026-11-24T12:00:00Z"
DAY3 = "2026-11-25T10:00:00Z"
DAY5 = "2026-11-27T12:00:00Z"
TEMPLATES = ("welcome", "welcome_again", "welcome_tips", "first_order_nudge")
PEOPLE = ("ada", "bob", "cy", "dee")


@pytest.fixture
def signer(kit_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> SendGridSigner:
    key = SendGridSigner()
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", key.public_key)
    monkeypatch.setenv("AUTOMATION_PUBLIC_URL", PUBLIC_URL)
    shutil.copy(ROOT / "journeys" / "welcome_series.yaml", Path(kit_env["AUTOMATION_JOURNEYS_DIR"]))
    for name in TEMPLATES:
        shutil.copytree(ROOT / "templates" / name, Path(kit_env["AUTOMATION_TEMPLATES_DIR"]) / name)
    return key


@pytest.fixture
def welcome(signer: SendGridSigner) -> Iterator[Flow]:
    f = Flow(load_settings())
    yield f
    f.close()


def opened(flow: Flow, signer: SendGridSigner, *customers: str) -> None:
    """The welcome email of each customer opened an hour after it went, as SendGrid reports it."""
    at = utc("2026-11-22T13:00:00Z")
    sent = {d.customer_id: d.id for d in flow.deliveries(step_id="welcome")}
    body = batch(
        *(sendgrid_event("open", f"open-{c}", at, sent[c], email=f"{c}@example.com") for c in customers)
    )
    with TestClient(create_app(flow.settings, flow.runtime.sessions, clock=lambda: at)) as client:
        reply = client.post("/webhooks/sendgrid", content=body, headers=signer.headers(body, at))
        assert reply.status_code == 200, reply.text


def signed_up(flow: Flow, *customers: str, tz: str = "UTC") -> None:
    flow.ingest(
        [person(c, tz) for c in customers] + [track(c, "signed_up", T0, f"su-{c}") for c in customers]
    )


def steps_of(flow: Flow) -> dict[str, reporting.funnel.StepStats]:
    (row,) = reporting.status(flow.runtime.sessions, flow.runtime.catalog, journey_id="welcome_series")
    return {s.id: s for s in row.steps}


def test_the_welcome_goes_again_only_unopened_and_day_five_thanks_buyers_and_nudges_the_rest(
    welcome: Flow, signer: SendGridSigner, sendgrid: SendGridStandIn
) -> None:
    flow = welcome
    signed_up(flow, *PEOPLE)
    flow.run(T0)
    assert {d.customer_id for d in flow.deliveries(step_id="welcome", status=DeliveryStatus.SENT)} == set(
        PEOPLE
    )
    opened(flow, signer, "ada", "cy")

    flow.run(DAY2)
    again = flow.deliveries(step_id="welcome-again")
    assert {d.customer_id: d.status for d in again} == dict.fromkeys(("bob", "dee"), DeliveryStatus.SENT)
    subjects = {(m["to"], m["subject"]) for m in sendgrid.messages()}
    assert ("bob@example.com", "Welcome to Northwind Coffee, Bob") in subjects
    assert ("bob@example.com", "In case you missed it: your welcome to Northwind Coffee") in subjects
    assert not any(to == "ada@example.com" and "missed" in subject for to, subject in subjects)

    flow.ingest(
        [track("ada", "order_placed", DAY3, "o-ada", total=20), track("bob", "order_placed", DAY3, "o-bob")]
    )
    flow.run("2026-11-27T11:00:00Z")  # an hour before day five: nothing yet
    assert not flow.deliveries(step_id="tips") and not flow.deliveries(step_id="first-order-nudge")
    flow.run(DAY5)
    tips = {d.customer_id for d in flow.deliveries(step_id="tips", status=DeliveryStatus.SENT)}
    nudged = {d.customer_id for d in flow.deliveries(step_id="first-order-nudge", status=DeliveryStatus.SENT)}
    assert (tips, nudged) == ({"ada", "bob"}, {"cy", "dee"})
    assert [d.template for d in flow.deliveries(step_id="tips")] == ["welcome_tips", "welcome_tips"]


def test_status_counts_each_step_through_the_branch_and_says_who_waits_where(
    welcome: Flow, signer: SendGridSigner, kit_env: dict[str, str]
) -> None:
    flow = welcome
    signed_up(flow, *PEOPLE)
    flow.run(T0)
    opened(flow, signer, "ada")
    steps = steps_of(flow)
    assert steps["welcome"].sent == 4 and steps["welcome"].opened == 1
    assert steps["unopened-welcome"].waiting == 4  # the two-day wait leads to the branch
    assert steps["welcome-again"].number == "3.then.1" and steps["welcome-again"].messages == {}

    flow.run(DAY2)
    steps = steps_of(flow)
    assert (steps["welcome-again"].sent, steps["unopened-welcome"].waiting) == (3, 0)
    assert steps["ordered-yet"].waiting == 4
    assert [s.number for s in steps.values()] == ["1", "2", "3", "3.then.1", "4", "5", "5.then.1", "5.else.1"]

    out = cli("status", "--journey", "welcome_series", "--json", env=kit_env)
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)["journeys"]
    by_id = {s["id"]: s for s in row["steps"]}
    assert row["entered"] == 4
    assert (by_id["welcome-again"]["sent"], by_id["welcome-again"]["number"]) == (3, "3.then.1")
    assert by_id["ordered-yet"]["waiting"] == 4


def test_customers_show_says_where_each_customer_is_and_what_waits_to_go(
    welcome: Flow, kit_env: dict[str, str]
) -> None:
    flow = welcome
    signed_up(flow, "ada")
    signed_up(flow, "kenji", tz="Asia/Tokyo")  # 21:00 in Tokyo: the welcome waits for the morning
    flow.run(T0)
    catalog = flow.runtime.catalog
    (ada,) = reporting.customer(flow.runtime.sessions, "ada", catalog=catalog).in_flight
    assert (ada["step"], ada["waits_for"]) == ("3 unopened-welcome", "to branch on step welcome not opened")
    assert ada["until"] == utc(DAY2) and ada["pending"] is None
    (kenji,) = reporting.customer(flow.runtime.sessions, "kenji", catalog=catalog).in_flight
    assert kenji["pending"] == "welcome (deferred, due 2026-11-22 23:00)"

    flow.run(DAY2)
    out = cli("customers", "show", "ada", env=kit_env)
    assert out.returncode == 0, out.stderr
    assert "5 ordered-yet" in out.stdout and "to branch on order_count gte 1" in out.stdout
    assert "2026-11-27" in out.stdout
