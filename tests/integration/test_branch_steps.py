"""A `branch` judged when reached, on engagement fed by real signed SendGrid webhooks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from automation.config import load_settings
from automation.core.statuses import DeliveryStatus
from automation.insight.explain import explain
from automation.web.app import create_app
from tests.deliverykit import kit_env, person
from tests.harness import Flow, track, utc
from tests.webhooks import PUBLIC_URL, SendGridSigner, batch, sendgrid_event

__all__ = ["kit_env"]

T0 = "2026-11-22T12:00:00Z"
T1 = "2026-11-22T13:00:00Z"
MAIL = "channel: email, template: promo_mail"
ENGAGED = f"""id: engaged
name: engaged
trigger: {{event: {{name: engage}}}}
quiet_hours: false
frequency_cap: false
steps:
  - send: {{id: first, {MAIL}}}
  - wait: {{hours: 1}}
  - branch:
      id: opened-first
      if: {{step: first, opened: true}}
      then:
        - send: {{id: thanks, {MAIL}}}
      else:
        - send: {{id: nudge, {MAIL}, if: {{step: first, delivered: true}}}}
  - send: {{id: after, {MAIL}}}
"""


@pytest.fixture
def engaged_signer(kit_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> SendGridSigner:
    key = SendGridSigner()
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", key.public_key)
    monkeypatch.setenv("AUTOMATION_PUBLIC_URL", PUBLIC_URL)
    Path(kit_env["AUTOMATION_JOURNEYS_DIR"], "engaged.yaml").write_text(ENGAGED, encoding="utf-8")
    return key


@pytest.fixture
def branch_flow(engaged_signer: SendGridSigner) -> Iterator[Flow]:
    f = Flow(load_settings())
    yield f
    f.close()


def post_events(flow: Flow, signer: SendGridSigner, *events: dict[str, object]) -> None:
    body = batch(*events)
    at = utc(T1)
    with TestClient(create_app(flow.settings, flow.runtime.sessions, clock=lambda: at)) as client:
        reply = client.post("/webhooks/sendgrid", content=body, headers=signer.headers(body, at))
        assert reply.status_code == 200, reply.text


def test_a_branch_takes_then_for_an_open_and_else_otherwise_and_the_paths_rejoin(
    branch_flow: Flow, engaged_signer: SendGridSigner
) -> None:
    flow, signer = branch_flow, engaged_signer
    flow.ingest(
        [person("ada"), person("bob"), person("cy")] + [track(c, "engage", T0) for c in ("ada", "bob", "cy")]
    )
    flow.run(T0)
    first = {d.customer_id: d for d in flow.deliveries(step_id="first")}
    assert {c: d.status for c, d in first.items()} == dict.fromkeys(("ada", "bob", "cy"), DeliveryStatus.SENT)
    opened = utc("2026-11-22T12:10:00Z")
    post_events(
        flow,
        signer,
        sendgrid_event("delivered", "e1", opened, first["ada"].id, email="ada@example.com"),
        sendgrid_event("open", "e2", opened, first["ada"].id, email="ada@example.com"),
        sendgrid_event("delivered", "e3", opened, first["bob"].id, email="bob@example.com"),
    )
    flow.run(T1)
    by_step = {(d.customer_id, d.step_id): d for d in flow.deliveries()}
    assert by_step[("ada", "thanks")].status == DeliveryStatus.SENT
    assert ("ada", "nudge") not in by_step
    assert by_step[("bob", "nudge")].status == DeliveryStatus.SENT and ("bob", "thanks") not in by_step
    assert by_step[("cy", "nudge")].status == DeliveryStatus.SKIPPED
    assert by_step[("cy", "nudge")].reason == "if: step first delivered does not hold"
    assert {c for c, s in by_step if s == "after"} == {"ada", "bob", "cy"}


def test_a_branch_is_judged_as_it_stood_when_reached_not_when_the_tick_ran(
    branch_flow: Flow, engaged_signer: SendGridSigner
) -> None:
    flow, signer = branch_flow, engaged_signer
    flow.ingest([person("ada"), track("ada", "engage", T0)])
    flow.run(T0)
    (first,) = flow.deliveries(step_id="first")
    late_open = utc("2026-11-22T13:30:00Z")  # after the branch fell due at 13:00
    post_events(flow, signer, sendgrid_event("open", "e9", late_open, first.id, email="ada@example.com"))
    flow.run("2026-11-22T14:00:00Z")  # a late tick
    assert [d.step_id for d in flow.deliveries()] == ["first", "nudge", "after"]


def test_explain_says_which_way_a_branch_would_go_at_now_and_why(
    branch_flow: Flow, engaged_signer: SendGridSigner
) -> None:
    flow, signer = branch_flow, engaged_signer
    flow.ingest([person("ada"), person("bob"), track("ada", "engage", T0), track("bob", "engage", T0)])
    flow.run(T0)
    ada = next(d for d in flow.deliveries(step_id="first") if d.customer_id == "ada")
    opened = utc("2026-11-22T12:10:00Z")
    post_events(flow, signer, sendgrid_event("open", "e5", opened, ada.id, email="ada@example.com"))
    journey = flow.runtime.catalog.journeys["engaged"]
    with flow.runtime.sessions() as s:
        for cid, line in (
            ("ada", "then (step first opened holds)"),
            ("bob", "else (step first opened does not hold)"),
        ):
            told = explain(s, journey, flow.runtime.catalog, cid, utc(T1), "UTC")
            assert told.lines[-1] == f"branch opened-first at {utc(T1).isoformat()}: {line}"
