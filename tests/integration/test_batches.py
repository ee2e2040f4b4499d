"""Email batches: one SendGrid request for many recipients, and still exactly once per person.

The tick puts the email deliveries of one journey step into `deliver_batch`
messages; the worker sends the recipients that can share a body in one request
(personalizations with substitutions) through the real SDK to the stand-in.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select, update

from automation.store.models import Delivery, Suppression
from tests.deliverykit import event, flow, kit_env, kit_settings, make_flow, person
from tests.harness import Flow
from tests.standins import Reply, SendGridStandIn

__all__ = ["flow", "kit_env", "kit_settings", "make_flow"]

NOW = "2026-11-22T12:00:00Z"
EARLIER = "2026-11-22T11:00:00Z"
NAMES = ["ada", "ben", "cy", "dee"]


def crowd(flow: Flow, names: list[str], nameless: tuple[str, ...] = ()) -> None:
    people = [person(n) for n in names] + [person(n, first_name=None) for n in nameless]
    flow.ingest([*people, *(event(n, "news", EARLIER) for n in [*names, *nameless])])


def test_one_journey_step_goes_as_one_request_and_each_person_gets_their_own_email(
    flow: Flow, sendgrid: SendGridStandIn
) -> None:
    crowd(flow, NAMES, nameless=("zed",))
    report = flow.tick(NOW)
    assert report.enqueued == 5 and flow.queued_messages() == 1  # one deliver_batch message
    flow.drain()
    rows = {d.customer_id: d for d in flow.deliveries()}
    assert {d.status for d in rows.values()} == {"sent"}
    # Four named people share one body; "there" comes from the template, so zed goes alone.
    assert sorted(len(r.body["personalizations"]) for r in sendgrid.accepted) == [1, 4]
    shared = next(r.body for r in sendgrid.accepted if len(r.body["personalizations"]) == 4)
    assert "Ada" not in shared["content"][0]["value"]
    mails = {m["to"]: m for m in sendgrid.messages()}
    for cid, d in rows.items():
        mail = mails[f"{cid}@example.com"]
        shown = "there" if cid == "zed" else cid.capitalize()
        assert mail["subject"] == f"News for {'you' if cid == 'zed' else shown}"
        assert mail["text"].startswith(f"Hi {shown}, news.")
        assert f"Hi {shown}, news." in mail["html"]
        assert mail["custom_args"]["delivery_id"] == str(d.id)
        token_url = mail["headers"]["List-Unsubscribe"].strip("<>")
        assert token_url in mail["text"]  # each person's own unsubscribe link
    assert len({m["headers"]["List-Unsubscribe"] for m in mails.values()}) == 5
    ids = {d.provider_message_id for d in rows.values()}
    assert len(ids) == 2 and all(i and i.startswith("sg-") for i in ids)


def test_batches_off_sends_one_request_per_email(
    make_flow: Callable[..., Flow], sendgrid: SendGridStandIn
) -> None:
    flow = make_flow(email_batch_size=1)
    crowd(flow, NAMES)
    flow.tick(NOW)
    assert flow.queued_messages() == 4
    flow.drain()
    assert [len(r.body["personalizations"]) for r in sendgrid.accepted] == [1, 1, 1, 1]


def test_a_batch_over_the_size_is_split_into_messages(
    make_flow: Callable[..., Flow], sendgrid: SendGridStandIn
) -> None:
    flow = make_flow(email_batch_size=3)
    crowd(flow, [*NAMES, "eve", "fay", "gus"])
    flow.tick(NOW)
    assert flow.queued_messages() == 3  # 3 + 3 + 1
    flow.drain()
    assert sorted(len(r.body["personalizations"]) for r in sendgrid.accepted) == [1, 3, 3]
    assert len(sendgrid.messages()) == 7


def test_a_transient_error_retries_the_whole_batch_once_each(flow: Flow, sendgrid: SendGridStandIn) -> None:
    sendgrid.queue(Reply(503, {"errors": [{"message": "service unavailable"}]}))
    crowd(flow, NAMES)
    flow.run(NOW)
    rows = flow.deliveries()
    assert {(d.status, d.attempts) for d in rows} == {("sent", 2)}
    assert sorted(m["to"] for m in sendgrid.messages()) == [f"{n}@example.com" for n in NAMES]


def test_a_refusal_naming_a_recipient_sends_the_others_one_by_one(
    flow: Flow, sendgrid: SendGridStandIn
) -> None:
    bad = {"message": "Does not contain a valid address.", "field": "personalizations.1.to.0.email"}
    sendgrid.queue(Reply(400, {"errors": [bad]}), Reply(202), Reply(400, {"errors": [bad]}))
    crowd(flow, ["ada", "ben", "cy"])
    flow.run(NOW)
    rows = {d.customer_id: d for d in flow.deliveries()}
    assert rows["ada"].status == rows["cy"].status == "sent"
    assert rows["ben"].status == "failed" and "valid address" in (rows["ben"].reason or "")
    with flow.runtime.sessions() as s:
        assert list(s.scalars(select(Suppression.address))) == ["ben@example.com"]
    assert sorted(m["to"] for m in sendgrid.messages()) == ["ada@example.com", "cy@example.com"]


def test_a_refusal_of_the_whole_request_fails_every_row_without_a_request_each(
    flow: Flow, sendgrid: SendGridStandIn
) -> None:
    sendgrid.queue(Reply(403, {"errors": [{"message": "access forbidden"}]}))
    crowd(flow, NAMES)
    flow.run(NOW)
    assert {(d.status, d.reason) for d in flow.deliveries()} == {("failed", "sendgrid 403: access forbidden")}
    assert sendgrid.script == [] and sendgrid.accepted == []


def test_a_batch_message_finding_its_own_sends_marks_them_unknown_and_resumes_its_claims(
    flow: Flow, sendgrid: SendGridStandIn
) -> None:
    crowd(flow, ["ada", "ben", "cy"])
    flow.tick(NOW)
    rows = {d.customer_id: d for d in flow.deliveries()}
    ada, ben, cy = rows["ada"], rows["ben"], rows["cy"]
    with flow.runtime.sessions.begin() as s:  # the worker died after sending ada's part, before ben's ended
        s.execute(update(Delivery).where(Delivery.id == ada.id).values(status="sent", message_id="m-1"))
        s.execute(update(Delivery).where(Delivery.id == ben.id).values(status="sending", message_id="m-1"))
        s.execute(update(Delivery).where(Delivery.id == cy.id).values(status="claimed", message_id="m-1"))
    ids = [ada.id, ben.id, cy.id]
    assert flow.deliverer.deliver_many(ids, "m-1") == {ada.id: "dropped", ben.id: "unknown", cy.id: "sent"}
    assert flow.deliverer.deliver_many(ids, "m-2") == dict.fromkeys(ids, "dropped")
    assert [m["to"] for m in sendgrid.messages()] == ["cy@example.com"]


def test_two_sends_to_one_person_in_one_batch_respect_the_daily_cap(
    flow: Flow, sendgrid: SendGridStandIn
) -> None:
    flow.ingest([person("ada"), event("ada", "news", EARLIER, n=1), event("ada", "news", EARLIER, n=2)])
    flow.run(NOW)
    statuses = sorted((d.status, d.reason or "") for d in flow.deliveries())
    assert statuses == [("deferred", "frequency cap"), ("sent", "")]
    assert len(sendgrid.messages()) == 1
