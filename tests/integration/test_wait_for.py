"""`wait_for` on real PostgreSQL and SQLite, Redis and the SendGrid stand-in: event timestamps decide.

Time is passed to each tick as `now`; events are ingested between ticks as a
tracking pipeline would, some late on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from textwrap import indent

import pytest
from sqlalchemy import select, update

from automation.config import load_settings
from automation.core.statuses import DeliveryStatus, EnrollmentState
from automation.insight.explain import explain
from automation.store import db, erasure
from automation.store.models import Enrollment, EnrollmentWait, Watermark
from tests.deliverykit import kit_env, person
from tests.harness import Flow, track, utc

__all__ = ["kit_env"]

T0 = "2026-11-22T12:00:00Z"
DEADLINE = "2026-11-22T16:00:00Z"
MAIL = "channel: email, template: promo_mail"
# The cart's wait: thanks if that cart is ordered within 4 h, else a reminder.
PAID = f"""  - wait_for:
      id: paid
      event: order_placed
      match: [cart_id]
      within: 4h
      happened:
        - send: {{id: thanks, {MAIL}}}
      timed_out:
        - send: {{id: reminder, {MAIL}}}"""
CARTS = f"""id: carts
name: carts
trigger: {{event: {{name: checkout_started}}}}
quiet_hours: false
frequency_cap: false
steps:
{PAID}
  - send: {{id: after, {MAIL}}}
"""
ANY_ORDER = f"""id: any_order
name: any order
trigger: {{event: {{name: signed_up}}}}
quiet_hours: false
frequency_cap: false
steps:
  - wait_for: {{id: ordered, event: order_placed, within: 2d, timed_out: [{{send: {{id: nudge, {MAIL}}}}}]}}
"""


@pytest.fixture(params=["postgresql", "sqlite"])
def waits(
    request: pytest.FixtureRequest, kit_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flow]:
    journeys = Path(kit_env["AUTOMATION_JOURNEYS_DIR"])
    (journeys / "carts.yaml").write_text(CARTS, encoding="utf-8")
    (journeys / "any_order.yaml").write_text(ANY_ORDER, encoding="utf-8")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/waits.db"
        monkeypatch.setenv("DATABASE_URL", url)
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
    f = Flow(load_settings())
    yield f
    f.close()


def checkout(cid: str, cart: str, ts: str = T0) -> dict[str, object]:
    return track(cid, "checkout_started", ts, f"checkout-{cart}", cart_id=cart, items=[], total=10.0)


def order(cid: str, cart: str | None, ts: str, n: int = 1) -> dict[str, object]:
    props = {"cart_id": cart} if cart is not None else {}
    return track(cid, "order_placed", ts, f"order-{cid}-{cart}-{n}", total=10.0, **props)


def steps_sent(flow: Flow, journey: str = "carts") -> list[tuple[str, str]]:
    return sorted(
        (d.customer_id, d.step_id)
        for d in flow.deliveries(journey_id=journey)
        if d.status == DeliveryStatus.SENT
    )


def enrollments(flow: Flow, journey: str = "carts") -> dict[str, Enrollment]:
    with flow.runtime.sessions() as s:
        rows = s.scalars(select(Enrollment).where(Enrollment.journey_id == journey))
        return {r.context["event"].get("cart_id", r.customer_id): r for r in rows}


def wait_rows(flow: Flow) -> list[EnrollmentWait]:
    with flow.runtime.sessions() as s:
        return list(s.scalars(select(EnrollmentWait).order_by(EnrollmentWait.enrollment_id)))


def test_reaching_the_step_parks_the_enrollment_until_its_deadline(waits: Flow) -> None:
    waits.ingest([person("ada"), checkout("ada", "c1")])
    waits.run(T0)
    (row,) = wait_rows(waits)
    assert (row.event, row.match_key, row.step_id) == ("order_placed", '{"cart_id":"c1"}', "paid")
    assert (row.reached_at, row.deadline) == (utc(T0), utc(DEADLINE))
    parked = enrollments(waits)["c1"]
    assert (parked.next_step_id, parked.next_at) == ("paid", utc(DEADLINE))
    assert steps_sent(waits) == []


def test_an_order_of_the_cart_before_the_deadline_wakes_it_early_and_takes_happened(waits: Flow) -> None:
    waits.ingest([person("ada"), checkout("ada", "c1")])
    waits.run(T0)
    waits.ingest([order("ada", "c1", "2026-11-22T13:00:00Z")], now="2026-11-22T13:05:00Z")
    report = waits.run("2026-11-22T13:05:00Z")
    assert report.woken == 1
    assert steps_sent(waits) == [("ada", "after"), ("ada", "thanks")]
    (thanks,) = waits.deliveries(step_id="thanks")
    assert thanks.first_due_at == utc("2026-11-22T13:00:00Z")  # the path starts at the order itself
    assert wait_rows(waits) == []
    waits.run(DEADLINE)
    assert steps_sent(waits) == [("ada", "after"), ("ada", "thanks")]


def test_an_order_after_the_deadline_is_too_late_the_reminder_goes(waits: Flow) -> None:
    waits.ingest([person("ada"), checkout("ada", "c1")])
    waits.run(T0)
    waits.run("2026-11-22T15:59:00Z")
    assert steps_sent(waits) == []
    waits.run(DEADLINE)
    assert steps_sent(waits) == [("ada", "after"), ("ada", "reminder")]
    (reminder,) = waits.deliveries(step_id="reminder")
    assert reminder.first_due_at == utc(DEADLINE)
    waits.ingest([order("ada", "c1", "2026-11-22T17:00:00Z")], now="2026-11-22T17:00:00Z")
    assert waits.run("2026-11-22T17:05:00Z").woken == 0
    assert steps_sent(waits) == [("ada", "after"), ("ada", "reminder")]


def test_an_order_ingested_after_the_timeout_was_judged_never_reopens_it(waits: Flow) -> None:
    waits.ingest([person("ada"), checkout("ada", "c1")])
    waits.run(T0)
    waits.run(DEADLINE)
    # It happened before the deadline, but reached us half an hour after the decision.
    waits.ingest([order("ada", "c1", "2026-11-22T15:00:00Z")], now="2026-11-22T16:30:00Z")
    waits.run("2026-11-22T16:30:00Z")
    assert steps_sent(waits) == [("ada", "after"), ("ada", "reminder")]
    assert enrollments(waits)["c1"].state == EnrollmentState.COMPLETED


def test_a_late_tick_decides_by_the_order_time_even_when_the_early_wake_missed_it(waits: Flow) -> None:
    waits.ingest([person("ada"), checkout("ada", "c1")])
    waits.run(T0)
    waits.ingest([order("ada", "c1", "2026-11-22T15:00:00Z")], now="2026-11-22T15:10:00Z")
    # As when PostgreSQL commits an event's id after the watermark moved past it.
    with waits.runtime.sessions.begin() as s:
        s.execute(update(Watermark).values(last_id=10**9))
    assert waits.run("2026-11-22T15:20:00Z").woken == 0
    assert steps_sent(waits) == []
    waits.run("2026-11-22T18:00:00Z")  # the deadline's tick, itself late
    assert steps_sent(waits) == [("ada", "after"), ("ada", "thanks")]
    (thanks,) = waits.deliveries(step_id="thanks")
    assert thanks.first_due_at == utc("2026-11-22T15:00:00Z")


def test_two_carts_at_once_each_wait_for_their_own_order(waits: Flow) -> None:
    waits.ingest([person("ada"), checkout("ada", "c1"), checkout("ada", "c2", "2026-11-22T12:30:00Z")])
    waits.run("2026-11-22T12:30:00Z")
    assert len(wait_rows(waits)) == 2
    waits.ingest([order("ada", "c2", "2026-11-22T13:00:00Z")], now="2026-11-22T13:00:00Z")
    assert waits.run("2026-11-22T13:00:00Z").woken == 1
    by_cart = enrollments(waits)
    assert by_cart["c1"].next_step_id == "paid" and by_cart["c1"].next_at == utc(DEADLINE)
    assert [d.enrollment_id for d in waits.deliveries(step_id="thanks")] == [by_cart["c2"].id]
    waits.run(DEADLINE)
    assert [d.enrollment_id for d in waits.deliveries(step_id="reminder")] == [by_cart["c1"].id]
    assert wait_rows(waits) == []


def test_an_order_for_another_cart_neither_wakes_nor_sends(waits: Flow) -> None:
    waits.ingest([person("ada"), checkout("ada", "c1")])
    waits.run(T0)
    waits.ingest(
        [order("ada", "c9", "2026-11-22T13:00:00Z"), order("ada", None, "2026-11-22T13:01:00Z")],
        now="2026-11-22T13:05:00Z",
    )
    report = waits.run("2026-11-22T13:05:00Z")
    assert report.woken == 0
    assert enrollments(waits)["c1"].next_at == utc(DEADLINE)
    assert steps_sent(waits) == []
    waits.run(DEADLINE)
    assert steps_sent(waits) == [("ada", "after"), ("ada", "reminder")]


def test_without_match_any_order_of_the_customer_counts(waits: Flow) -> None:
    signed = "2026-11-22T12:00:00Z"
    waits.ingest(
        [person("ada"), person("bob")]
        + [track(c, "signed_up", signed, f"signup-{c}") for c in ("ada", "bob")]
    )
    waits.run(signed)
    waits.ingest([order("ada", "whatever", "2026-11-23T09:00:00Z")], now="2026-11-23T09:00:00Z")
    assert waits.run("2026-11-23T09:00:00Z").woken == 1
    waits.run("2026-11-24T12:00:00Z")
    assert steps_sent(waits, "any_order") == [("bob", "nudge")]
    states = {e.customer_id: e.state for e in enrollments(waits, "any_order").values()}
    assert states == dict.fromkeys(("ada", "bob"), EnrollmentState.COMPLETED)


def test_an_exited_enrollment_leaves_no_wait_behind(waits: Flow, kit_env: dict[str, str]) -> None:
    waits.ingest([person("ada"), checkout("ada", "c1")])
    waits.run(T0)
    waits.close()
    path = Path(kit_env["AUTOMATION_JOURNEYS_DIR"]) / "carts.yaml"
    path.write_text(
        CARTS.replace("steps:", "exit_on: {event: order_placed, match: [cart_id]}\nsteps:"), encoding="utf-8"
    )
    edited = Flow(load_settings())
    try:
        edited.ingest([order("ada", "c9", "2026-11-22T13:00:00Z")], now="2026-11-22T13:00:00Z")
        assert edited.run("2026-11-22T13:00:00Z").exited == 0  # another cart's order does not end it
        edited.ingest([order("ada", "c1", "2026-11-22T13:30:00Z")], now="2026-11-22T13:30:00Z")
        assert edited.run("2026-11-22T13:30:00Z").exited == 1
        exited = enrollments(edited)["c1"]
        assert (exited.state, exited.exit_reason) == (EnrollmentState.EXITED, "exit_on:order_placed")
        assert wait_rows(edited) == [] and steps_sent(edited) == []
    finally:
        edited.close()


GATED = f"""id: carts
name: carts
trigger: {{event: {{name: checkout_started}}}}
quiet_hours: false
frequency_cap: false
steps:
  - branch:
      id: gate
      if: {{trait: email, exists: true}}
      then:
{indent(PAID, "      ")}
        - send: {{id: in-branch, {MAIL}}}
  - send: {{id: after, {MAIL}}}
"""
REMOVED = f"""id: carts
name: carts
trigger: {{event: {{name: checkout_started}}}}
steps:
  - send: {{id: after, {MAIL}}}
"""


def edited_in_flight(flow: Flow, kit_env: dict[str, str], before: str, after: str) -> Flow:
    """Park ada at `paid` under `before`, then the file becomes `after` and the scheduler restarts."""
    path = Path(kit_env["AUTOMATION_JOURNEYS_DIR"]) / "carts.yaml"
    path.write_text(before, encoding="utf-8")
    first = Flow(load_settings())
    first.ingest([person("ada"), checkout("ada", "c1")])
    first.run(T0)
    assert enrollments(first)["c1"].next_step_id == "paid"
    first.close()
    path.write_text(after, encoding="utf-8")
    return Flow(load_settings())


@pytest.mark.parametrize(
    ("before", "after", "sent"),
    [
        # Moved into a branch: its own list, then the rest of the branch's list, then what follows.
        (CARTS, GATED, ["reminder", "in-branch", "after"]),
        # Moved out of it: its own list, then the step after it at the top level.
        (GATED, CARTS, ["reminder", "after"]),
    ],
)
def test_a_parked_wait_for_keeps_its_place_by_id_when_an_edit_moves_it(
    waits: Flow, kit_env: dict[str, str], before: str, after: str, sent: list[str]
) -> None:
    edited = edited_in_flight(waits, kit_env, before, after)
    try:
        edited.run(DEADLINE)
        assert [d.step_id for d in edited.deliveries(journey_id="carts")] == sent
        assert wait_rows(edited) == []
    finally:
        edited.close()


def test_a_wait_for_removed_in_flight_ends_the_enrollment_and_its_wait(
    waits: Flow, kit_env: dict[str, str]
) -> None:
    edited = edited_in_flight(waits, kit_env, CARTS, REMOVED)
    try:
        edited.ingest([order("ada", "c1", "2026-11-22T13:00:00Z")], now="2026-11-22T13:00:00Z")
        assert edited.run("2026-11-22T13:00:00Z").woken == 0
        edited.run(DEADLINE)
        assert edited.deliveries(journey_id="carts") == []
        assert enrollments(edited)["c1"].state == EnrollmentState.COMPLETED
        assert wait_rows(edited) == []
    finally:
        edited.close()


def test_explain_says_what_a_parked_customer_would_do_at_the_wait_for_at_now(waits: Flow) -> None:
    waits.ingest([person("ada"), person("bob"), checkout("ada", "c1"), checkout("bob", "c2")])
    waits.run(T0)
    waits.ingest([order("ada", "c1", "2026-11-22T13:00:00Z")], now="2026-11-22T13:00:00Z")
    journey, catalog = waits.runtime.catalog.journeys["carts"], waits.runtime.catalog
    with waits.runtime.sessions() as s:
        ada = explain(s, journey, catalog, "ada", utc("2026-11-22T13:30:00Z"), "UTC").lines[-1]
        bob = explain(s, journey, catalog, "bob", utc("2026-11-22T13:30:00Z"), "UTC").lines[-1]
        late = explain(s, journey, catalog, "bob", utc("2026-11-22T16:30:00Z"), "UTC").lines[-1]
    assert (
        ada
        == "wait_for paid at 2026-11-22T13:30:00+00:00: happened (order_placed at 2026-11-22T13:00:00+00:00)"
    )
    assert bob == (
        "wait_for paid at 2026-11-22T13:30:00+00:00: still waiting for order_placed (cart_id c2) "
        "until 2026-11-22T16:00:00+00:00"
    )
    assert late == (
        "wait_for paid at 2026-11-22T16:30:00+00:00: timed_out (no order_placed (cart_id c2) "
        "between 2026-11-22T12:00:00+00:00 and 2026-11-22T16:00:00+00:00)"
    )


def test_a_removed_journey_and_an_erased_customer_leave_no_wait_behind(
    waits: Flow, kit_env: dict[str, str]
) -> None:
    waits.ingest([person("ada"), person("bob"), checkout("ada", "c1"), checkout("bob", "c2")])
    waits.run(T0)
    assert len(wait_rows(waits)) == 2
    with waits.runtime.sessions.begin() as s:
        erasure.forget(s, "ada", utc("2026-11-22T12:30:00Z"))
    assert [w.customer_id for w in wait_rows(waits)] == ["bob"]
    waits.close()
    (Path(kit_env["AUTOMATION_JOURNEYS_DIR"]) / "carts.yaml").unlink()
    without = Flow(load_settings())
    try:
        assert without.run("2026-11-22T13:00:00Z").exited == 1
        assert wait_rows(without) == []
    finally:
        without.close()
