"""One bad record never blocks the others: each failure is its own delivery's, with its reason.

Poison comes from customer data (a `points` trait a template cannot add to, or
a range the sandbox refuses), from a step `if` the database cannot evaluate,
from a name with CR/LF, or from the worker failing a whole message. Every run
returns; every good delivery is sent once, every poisoned one is `failed` with
its reason, nothing is left `queued`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import dramatiq
from sqlalchemy import select, update

from automation.core.filters import Filter
from automation.core.journeys import Journey, Step, WaitStep
from automation.definitions.catalog import Catalog
from automation.deliver.deliverer import Deliverer
from automation.processes import worker as worker_module
from automation.processes.runtime import QUEUE
from automation.store.models import Customer, Enrollment
from tests.deliverykit import event, flow, kit_env, kit_settings, make_flow, person
from tests.harness import Flow, cli
from tests.standins import Reply, SendGridStandIn, TwilioStandIn

__all__ = ["flow", "kit_env", "kit_settings", "make_flow"]

NOW = "2026-11-22T12:00:00Z"
EARLIER = "2026-11-22T11:00:00Z"
POISON = {"lots": "lots", "huge": 10**9}


def customers(flow: Flow, kind: str, points: dict[str, Any]) -> None:
    """One customer per entry, with that many points, entering the journey of `kind`."""
    records: list[dict[str, Any]] = []
    for cid, value in points.items():
        records += [person(cid, points=value), event(cid, kind, EARLIER)]
    assert not flow.ingest(records).rejected


def by_customer(flow: Flow) -> dict[str, Any]:
    return {d.customer_id: d for d in flow.deliveries()}


def test_a_template_failing_on_one_customers_data_fails_that_delivery_alone(
    flow: Flow, sendgrid: SendGridStandIn
) -> None:
    customers(flow, "points", {"ada": 5, "ben": 7, "cy": 5, **POISON})
    report = flow.run(NOW)
    assert report.enqueued == 5
    rows = by_customer(flow)
    assert {cid: rows[cid].status for cid in ("ada", "ben", "cy")} == dict.fromkeys(
        ("ada", "ben", "cy"), "sent"
    )
    lots, huge = rows["lots"], rows["huge"]
    assert (lots.status, huge.status) == ("failed", "failed")
    assert lots.reason == (
        'render: points_mail/body.html:1: TypeError: can only concatenate str (not "int") to str'
    )
    assert huge.reason is not None and huge.reason.startswith(
        "render: points_mail/body.html:1: OverflowError"
    )
    assert "lots" not in lots.reason.replace("points_mail", "")  # the data itself is never quoted
    sent_to = sorted(p["to"][0]["email"] for m in sendgrid.accepted for p in m.body["personalizations"])
    assert sent_to == ["ada@example.com", "ben@example.com", "cy@example.com"]


def test_an_sms_template_failing_on_one_customers_data_fails_that_sms_alone(
    flow: Flow, twilio: TwilioStandIn
) -> None:
    customers(flow, "points_text", {"ada": 5, **POISON})
    flow.run(NOW)
    rows = by_customer(flow)
    assert rows["ada"].status == "sent" and len(twilio.accepted) == 1
    assert rows["lots"].status == rows["huge"].status == "failed"
    assert rows["lots"].reason.startswith("render: points_sms/sms.txt:1: TypeError")


def _with_step_if(catalogs: Sequence[Catalog], journey_id: str, condition: Filter) -> None:
    """Give the journey's send step another `if`, in every catalog (the tick's and the worker's)."""
    for catalog in catalogs:
        journey: Journey = catalog.journeys[journey_id]
        step = journey.steps[0]
        assert step.send is not None
        send = step.send.model_copy(update={"if_": condition})
        catalog.journeys[journey_id] = journey.model_copy(
            update={"steps": [step.model_copy(update={"send": send})]}
        )


def test_a_step_if_that_cannot_be_compiled_fails_its_deliveries_with_the_reason(flow: Flow) -> None:
    _with_step_if(
        [flow.runtime.catalog, flow.deliverer.catalogs.current],
        "gold_only",
        Filter.model_construct(trait="birthday", eq="x"),
    )
    flow.ingest(
        [person("ada"), event("ada", "gold", EARLIER), person("ben"), event("ben", "receipt", EARLIER)]
    )
    flow.run(NOW)
    rows = by_customer(flow)
    assert rows["ada"].status == "failed"
    assert (
        rows["ada"].reason
        == "if: birthday eq 'x' cannot be evaluated: ValueError: Invalid isoformat string: 'x'"
    )
    assert rows["ben"].status == "sent"


def test_a_step_if_the_database_refuses_fails_its_deliveries_and_the_batch_goes_on(
    flow: Flow, sendgrid: SendGridStandIn
) -> None:
    _with_step_if(
        [flow.runtime.catalog, flow.deliverer.catalogs.current],
        "gold_only",
        Filter.model_construct(fact="order_count", gt="abc"),
    )
    flow.ingest([r for cid in ("ada", "ben") for r in (person(cid), event(cid, "gold", EARLIER))])
    flow.ingest([person("cy"), event("cy", "receipt", EARLIER)])
    flow.run(NOW)
    rows = by_customer(flow)
    for cid in ("ada", "ben"):
        assert rows[cid].status == "failed"
        assert rows[cid].reason == (
            "if: order_count gt 'abc' cannot be evaluated: the database refused it (UndefinedFunction)"
        )
    assert rows["cy"].status == "sent" and len(sendgrid.accepted) == 1


def test_a_name_with_cr_lf_fails_that_email_before_sending_never_unknown(
    make_flow: Callable[..., Flow], tmp_path: Any
) -> None:
    flow = make_flow(email_provider="outbox", outbox_dir=tmp_path / "outbox")
    cids = ["ada", "ben", "cy", "dee", "eve"]
    flow.ingest([r for cid in cids for r in (person(cid), event(cid, "news", EARLIER))])
    with flow.runtime.sessions.begin() as s:  # data from before ingest refused control characters
        s.execute(update(Customer).where(Customer.id == "cy").values(first_name="Cy\r\nBcc: all@example.com"))
    flow.run(NOW)
    rows = by_customer(flow)
    assert rows["cy"].status == "failed"
    assert rows["cy"].reason == "compose: a control character in the recipient's address or name"
    assert {rows[c].status for c in cids if c != "cy"} == {"sent"}
    written = sorted(p.name for p in (tmp_path / "outbox" / "email").iterdir())
    assert written == sorted(f"delivery-{rows[c].id}.eml" for c in cids if c != "cy")


def test_a_provider_timeout_below_zero_is_refused_before_anything_is_marked(
    kit_env: dict[str, str], flow: Flow
) -> None:
    flow.ingest([person("ada"), event("ada", "receipt", EARLIER)])
    result = cli(
        "tick", "--now", NOW, env={**kit_env, "REDIS_URL": "", "AUTOMATION_PROVIDER_TIMEOUT_S": "-1"}
    )
    assert result.returncode == 1
    assert "AUTOMATION_PROVIDER_TIMEOUT_S" in result.stderr and "Traceback" not in result.stderr
    assert {d.status for d in flow.deliveries()} <= {"queued"}


class FailingDeliverer(Deliverer):
    """The worker failing every message that carries a poisoned id (a fault outside any one row)."""

    def __init__(self, base: Deliverer, poisoned: set[int]) -> None:
        super().__init__(base.sessions, base.catalogs, base.settings, base.email, base.sms)
        self.poisoned = poisoned

    def deliver_many(self, ids: Sequence[int], message_id: str, claimed_at: Any = None) -> dict[int, str]:
        if self.poisoned.intersection(ids):
            raise RuntimeError("the worker fails on this message")
        return super().deliver_many(ids, message_id, claimed_at)


def test_a_message_the_worker_keeps_failing_is_retried_a_bounded_number_of_times_then_split(
    make_flow: Callable[..., Flow], sendgrid: SendGridStandIn
) -> None:
    flow = make_flow(worker_error_retries=2)
    cids = ["ada", "ben", "cy"]
    flow.ingest([r for cid in cids for r in (person(cid), event(cid, "news", EARLIER))])
    flow.tick(NOW)
    rows = by_customer(flow)
    worker_module.install(FailingDeliverer(flow.deliverer, {rows["ben"].id}))
    started = time.monotonic()
    flow.drain()
    assert time.monotonic() - started < 60
    rows = by_customer(flow)
    assert rows["ada"].status == rows["cy"].status == "sent"
    assert (rows["ben"].status, rows["ben"].reason) == (
        "failed",
        "gave up after 3 worker errors (RuntimeError)",
    )
    assert sorted(p["to"][0]["email"] for m in sendgrid.accepted for p in m.body["personalizations"]) == [
        "ada@example.com",
        "cy@example.com",
    ]


def test_twilio_retry_after_is_honoured(flow: Flow, twilio: TwilioStandIn) -> None:
    twilio.queue(
        Reply(429, {"code": 20429, "message": "Too Many Requests", "status": 429}, {"Retry-After": "2"})
    )
    flow.ingest([person("ada"), event("ada", "text", EARLIER)])
    started = time.monotonic()
    flow.run(NOW)
    [row] = flow.deliveries()
    assert (row.status, row.attempts) == ("sent", 2)
    assert time.monotonic() - started >= 2.0  # the backoff alone is 10-200 ms here


def test_a_redelivered_message_of_a_poisoned_batch_is_dropped(flow: Flow) -> None:
    customers(flow, "points", {"ada": 5, "lots": "lots"})
    flow.run(NOW)
    ids = [d.id for d in flow.deliveries()]
    flow.broker.enqueue(
        dramatiq.Message(queue_name=QUEUE, actor_name="deliver_batch", args=(ids,), kwargs={}, options={})
    )
    flow.drain()
    assert [d.status for d in flow.deliveries()] == ["sent", "failed"]


def test_a_journey_whose_tick_work_fails_is_reported_and_the_others_run(
    flow: Flow, sendgrid: SendGridStandIn, caplog: Any
) -> None:
    catalog = flow.runtime.catalog
    broken = Filter.model_construct(fact="order_count", gt="abc")
    catalog.journeys["promo_a"] = catalog.journeys["promo_a"].model_copy(update={"audience": broken})
    flow.ingest([person("ada"), event("ada", "promo", EARLIER), person("ben"), event("ben", "news", EARLIER)])
    report = flow.run(NOW)
    assert report.failed == {"promo_a": "UndefinedFunction"}
    assert report.summary().endswith("; failed: promo_a (UndefinedFunction)")
    assert "journey promo_a: this tick's work failed with UndefinedFunction" in caplog.text
    assert "ada@example.com" not in caplog.text
    rows = {(d.journey_id, d.customer_id): d.status for d in flow.deliveries()}
    assert rows[("news", "ben")] == "sent"
    assert ("promo_a", "ada") not in rows and rows[("promo_b", "ada")] == "sent"
    assert flow.run(NOW).failed == {"promo_a": "UndefinedFunction"}  # the next tick tries it again


def test_a_journey_whose_steps_cannot_be_planned_fails_alone_in_the_advance_pass(
    flow: Flow, sendgrid: SendGridStandIn, caplog: Any
) -> None:
    """A wait that lands past the calendar's end (validation refuses one; a catalog defect
    can still make one) fails its journey's advance, and the other journeys send."""
    catalog = flow.runtime.catalog
    journey = catalog.journeys["promo_a"]
    past_the_calendar = Step.model_construct(send=None, wait=WaitStep.model_construct(days=3_000_000))
    catalog.journeys["promo_a"] = journey.model_copy(update={"steps": [past_the_calendar, *journey.steps]})
    flow.ingest([person("ada"), event("ada", "promo", EARLIER), person("ben"), event("ben", "news", EARLIER)])
    report = flow.run(NOW)
    assert report.failed == {"promo_a": "OverflowError"}
    assert "journey promo_a: this tick's work failed with OverflowError" in caplog.text
    rows = {(d.journey_id, d.customer_id): d.status for d in flow.deliveries()}
    assert rows[("news", "ben")] == "sent"
    assert ("promo_a", "ada") not in rows and rows[("promo_b", "ada")] == "sent"
    with flow.runtime.sessions() as session:
        [waiting] = session.scalars(select(Enrollment).where(Enrollment.journey_id == "promo_a")).all()
        assert (waiting.state, waiting.next_step_id) == ("active", "step-1")  # left where it was
    assert flow.run(NOW).failed == {"promo_a": "OverflowError"}  # the next tick tries it again


def test_on_sqlite_a_customer_without_an_address_is_skipped_without_failing_the_others(
    kit_env: dict[str, str], tmp_path: Any
) -> None:
    env = {**kit_env, "DATABASE_URL": f"sqlite:///{tmp_path / 'lite.db'}", "REDIS_URL": ""}
    assert cli("db", "upgrade", env=env).returncode == 0
    records = [
        person("ada"),
        person("ben", phone=None),
        event("ada", "text", EARLIER),
        event("ben", "text", EARLIER),
    ]
    data = tmp_path / "records.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert cli("ingest", str(data), env=env).returncode == 0
    result = cli("tick", "--now", NOW, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    listing = cli("deliveries", "list", "--json", env=env)
    rows = {r["customer"]: r for r in json.loads(listing.stdout)["deliveries"]}
    assert rows["ada"]["status"] == "sent"
    assert (rows["ben"]["status"], rows["ben"]["reason"]) == ("skipped", "no phone number")
