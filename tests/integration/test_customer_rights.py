"""A customer's data rights and event retention, through the commands a user runs.

`customers export` prints everything held; `customers forget` erases the
person mid-journey (their queued message is skipped, never sent), keeps the
delivery rows without personal data and their suppression as a hash that still
stops a message to the same address, is idempotent, and a later identify
starts an empty profile. Retention deletes old events and leaves order facts,
reports and journeys as they were.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from automation.config import load_settings
from automation.store import retention
from automation.store.models import (
    Conversion,
    ConversionQueue,
    Customer,
    CustomerEventStat,
    Delivery,
    Enrollment,
    Event,
    Suppression,
    TestSend,
    TopicChoice,
)
from automation.store.suppressions import address_hash
from tests.harness import BIN, Flow, cli, identify, track, utc
from tests.integration.test_web_process import start, wait_for
from tests.standins import SendGridStandIn

NOW = "2026-11-22T12:00:00Z"


@pytest.fixture
def flow(env: dict[str, str]) -> Iterator[Flow]:
    f = Flow(load_settings())
    yield f
    f.close()


def ada(**traits: object) -> dict[str, object]:
    return identify(
        "c1", "2026-01-01T00:00:00Z", email="ada@example.com", first_name="Ada", email_opt_in=True, **traits
    )


def test_export_prints_every_thing_held_about_the_customer(
    flow: Flow, env: dict[str, str], sendgrid: SendGridStandIn
) -> None:
    flow.ingest([ada(tier="gold"), track("c1", "order_placed", "2026-11-22T09:00:00Z", "o-1", total=10)])
    flow.run("2026-11-22T11:30:00Z")
    assert cli("suppress", "add", "email", "ada@example.com", env=env).returncode == 0
    out = cli("customers", "export", "c1", env=env)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["profile"]["email"] == "ada@example.com" and doc["profile"]["tier"] == "gold"
    assert [e["event_key"] for e in doc["events"]] == ["o-1"]
    assert doc["events"][0]["properties"] == {"total": 10}
    assert [s["name"] for s in doc["event_stats"]] == ["order_placed"]
    assert [e["journey_id"] for e in doc["enrollments"]] == ["post_purchase_thanks"]
    [delivery] = doc["deliveries"]
    assert (delivery["status"], delivery["address"]) == ("sent", "ada@example.com")
    assert [(s["channel"], s["address"]) for s in doc["suppressions"]] == [("email", "ada@example.com")]

    missing = cli("customers", "export", "nobody", env=env)
    assert (
        missing.returncode == 1 and missing.stderr.strip() == "error: nothing is held about customer nobody"
    )


def test_forget_during_a_journey_skips_its_queued_message_and_a_new_identify_starts_empty(
    flow: Flow, env: dict[str, str], sendgrid: SendGridStandIn
) -> None:
    flow.ingest(
        [
            ada(),
            track("c1", "order_placed", "2026-11-22T09:00:00Z", "o-1", total=10),
            track("c1", "order_placed", "2026-11-22T10:00:00Z", "o-2", total=10),
        ]
    )
    flow.tick("2026-11-22T11:30:00Z")  # o-1's thank-you is queued, not yet sent; o-2's is waiting
    assert (
        cli("suppress", "add", "email", "ada@example.com", "--reason", "unsubscribe", env=env).returncode == 0
    )

    assert cli("topics", "set", "c1", "promotions", "off", env=env).returncode == 0
    with flow.runtime.sessions.begin() as s:
        s.add(
            TestSend(
                journey_id="post_purchase_thanks",
                step_id="thanks",
                customer_id="c1",
                channel="email",
                address="ops@example.com",
                provider="sendgrid",
                sent_by="ops",
                sent_at=utc(NOW),
            )
        )

    unconfirmed = cli("customers", "forget", "c1", env=env)
    assert unconfirmed.returncode == 1 and "--yes" in unconfirmed.stderr
    with flow.runtime.sessions() as s:
        assert s.get(Customer, "c1") is not None

    forgot = cli("customers", "forget", "c1", "--yes", env=env)
    assert forgot.returncode == 0, forgot.stderr
    assert forgot.stdout.splitlines() == [
        "erased customer c1:",
        "  profile: 1",
        "  events: 2",
        "  anonymous ids: 0",
        "  topic choices: 1",
        "  loyalty rows: 0",
        "  enrollments ended: 2",  # o-1's too: its message was still queued, so it was not done
        "  deliveries skipped: 1",
        "  deliveries anonymised: 1",
        "  suppressions hashed: 1",
    ]
    assert "ada@example.com" not in forgot.stdout + forgot.stderr
    flow.drain()
    assert sendgrid.messages() == []
    with flow.runtime.sessions() as s:
        [delivery] = s.scalars(select(Delivery))
        thanked, waiting = s.scalars(select(Enrollment).order_by(Enrollment.occurred_at))
        assert (delivery.status, delivery.reason, delivery.address) == ("skipped", "erased", None)
        assert delivery.customer_id.startswith("erased:")
        assert thanked.customer_id == waiting.customer_id == delivery.customer_id
        assert s.scalar(select(TestSend.customer_id)) == delivery.customer_id
        for ended in (thanked, waiting):  # one with its message queued, one still waiting
            assert (ended.state, ended.exit_reason, ended.context) == ("exited", "erased", {})
        assert s.scalar(select(func.count()).select_from(Event)) == 0
        assert s.scalar(select(func.count()).select_from(CustomerEventStat)) == 0
        assert s.scalar(select(func.count()).select_from(TopicChoice)) == 0
        for copied in (Conversion.customer_id, ConversionQueue.customer_id):
            assert s.scalar(select(func.count()).where(copied == "c1")) == 0
        [suppression] = s.scalars(select(Suppression))
        assert suppression.address == address_hash("ada@example.com")

    again = cli("customers", "forget", "c1", "--yes", env=env)
    assert (
        again.returncode == 0 and again.stdout.strip() == "nothing held about customer c1: nothing to erase"
    )
    assert cli("customers", "export", "c1", env=env).returncode == 1

    # The same id comes back: a new profile, and the hashed suppression still stops the address.
    flow.ingest(
        [
            identify("c1", "2026-11-23T00:00:00Z", email="ada@example.com", email_opt_in=True),
            track("c1", "order_placed", "2026-11-23T09:00:00Z", "o-3", total=5),
        ],
        now="2026-11-23T10:00:00Z",
    )
    with flow.runtime.sessions() as s:
        c1 = s.get(Customer, "c1")
        assert c1 is not None and (c1.first_name, c1.order_count, c1.lifetime_value) == (None, 1, 5)
    flow.run("2026-11-23T11:30:00Z")
    mine = flow.deliveries(customer_id="c1")
    assert [(d.status, d.reason) for d in mine] == [("suppressed", "address suppressed (unsubscribe)")]
    assert sendgrid.messages() == []


def test_retention_deletes_old_events_and_keeps_order_facts(flow: Flow) -> None:
    flow.ingest(
        [
            ada(),
            track("c1", "order_placed", "2026-06-01T09:00:00Z", "o-old", total=30),
            track("c1", "order_placed", "2026-11-20T09:00:00Z", "o-new", total=12),
            track("c1", "page_viewed", "2026-05-01T09:00:00Z", "p-old"),
        ]
    )
    removed = retention.apply(flow.runtime.sessions, utc(NOW), days=90)
    assert (removed.events, removed.anonymous_events) == (2, 0)
    with flow.runtime.sessions() as s:
        assert list(s.scalars(select(Event.event_key))) == ["o-new"]
        c1 = s.get(Customer, "c1")
        assert c1 is not None
        assert (c1.order_count, c1.lifetime_value, c1.last_order_at) == (2, 42, utc("2026-11-20T09:00:00Z"))
        stats = {x.name: x.count for x in s.scalars(select(CustomerEventStat))}
        assert stats == {"order_placed": 2, "page_viewed": 1}
    assert retention.apply(flow.runtime.sessions, utc(NOW), days=90).events == 0


def test_the_scheduler_runs_the_retention_pass(flow: Flow, env: dict[str, str]) -> None:
    today = dt.datetime.now(dt.UTC)
    flow.ingest(
        [
            ada(),
            track("c1", "order_placed", (today - dt.timedelta(days=40)).isoformat(), "o-old", total=1),
            track("c1", "order_placed", (today - dt.timedelta(days=1)).isoformat(), "o-new", total=1),
        ],
        now=today.isoformat(),
    )
    proc = start([str(BIN), "scheduler"], {**env, "AUTOMATION_EVENT_RETENTION_DAYS": "30"})
    try:

        def keys() -> list[str]:
            with flow.runtime.sessions() as s:
                return list(s.scalars(select(Event.event_key)))

        wait_for(lambda: keys() == ["o-new"], timeout=60)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    assert "deleted 1 events and 0 anonymous events past retention" in out
