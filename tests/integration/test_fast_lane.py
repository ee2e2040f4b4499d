"""The fast lane: a transactional message queued behind a campaign backlog still goes out among the first."""

from __future__ import annotations

from pathlib import Path

import dramatiq
from sqlalchemy import Engine, text

from automation.advance.send import Queued
from automation.campaigns import campaign as campaigns
from automation.processes.runtime import FAST_ACTOR, FAST_QUEUE, QUEUE, delivery_messages
from tests.deliverykit import (
    event,
    kit_env,
    kit_settings,
    make_flow,
    person,
    start_worker,
    stop_worker,
    wait_for,
)
from tests.harness import utc
from tests.standins import SendGridStandIn

__all__ = ["kit_env", "kit_settings", "make_flow"]

BACKLOG = 20_000
NOW = "2026-11-22T12:00:00Z"
BLAST = (
    "id: blast\nname: Blast\ntrigger: manual\nquiet_hours: false\nfrequency_cap: false\n"
    "steps:\n  - send: {channel: email, template: promo_mail}\n"
)


def _audience(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO customers (id, email, timezone, email_opt_in, sms_opt_in, traits,
                                       trait_times, order_count, lifetime_value, created_at, updated_at)
                SELECT 'b' || lpad(g::text, 6, '0'), 'b' || g || '@example.com', 'UTC', true, false,
                       '{}'::jsonb, '{}'::jsonb, 0, 0, now(), now()
                FROM generate_series(1, :n) AS g
                """
            ),
            {"n": n},
        )


def _analyze(engine: Engine) -> None:
    """Fresh planner statistics after a bulk load, as autovacuum would take."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE customers, enrollments, deliveries"))


def test_a_receipt_queued_behind_a_20000_message_backlog_reaches_the_provider_among_the_first(
    make_flow, kit_env: dict[str, str], sendgrid: SendGridStandIn, tmp_path: Path
) -> None:
    (Path(kit_env["AUTOMATION_JOURNEYS_DIR"]) / "blast.yaml").write_text(BLAST, encoding="utf-8")
    flow = make_flow(email_batch_size=1)
    _audience(flow.runtime.engine, BACKLOG)
    launched = campaigns.launch(
        flow.runtime.sessions, flow.runtime.catalog, "blast", now=utc(NOW), launched_by="test"
    )
    assert launched.enrolled == BACKLOG
    _analyze(flow.runtime.engine)
    assert flow.tick(NOW).enqueued == BACKLOG
    _analyze(flow.runtime.engine)
    assert flow.broker.do_qsize(QUEUE) == BACKLOG

    # The order receipt comes last, behind the whole backlog.
    flow.ingest([person("ada"), event("ada", "receipt", "2026-11-22T12:00:30Z")])
    assert flow.tick("2026-11-22T12:01:00Z").enqueued == 1
    assert flow.broker.do_qsize(FAST_QUEUE) == 1

    worker = start_worker(kit_env, tmp_path / "worker.log", threads=4)
    try:
        assert wait_for(lambda: any(m["to"] == "ada@example.com" for m in sendgrid.messages()), timeout=120)
    finally:
        assert stop_worker(worker) == 0
    received = [m["to"] for m in sendgrid.messages()]
    position = received.index("ada@example.com")
    # At most what the worker had already fetched from the bulk queue (its prefetch) went first.
    assert position < 50, position
    assert len(received) < BACKLOG
    (receipt,) = flow.deliveries(journey_id="receipt")
    assert receipt.status == "sent"


def test_transactional_deliveries_go_first_on_the_fast_lane_batched_like_the_rest() -> None:
    queued = [
        Queued(1, "email", "blast", "s1"),
        Queued(2, "email", "blast", "s1"),
        Queued(3, "sms", "blast", "s2"),
        Queued(4, "email", "receipt", "s1", True),
        Queued(5, "email", "receipt", "s1", True),
        Queued(6, "sms", "text_receipt", "s1", True),
    ]
    messages: list[dramatiq.Message] = list(delivery_messages(queued, batch_size=10))
    shapes = [(m.queue_name, m.actor_name, m.args[0]) for m in messages]
    assert shapes == [
        (FAST_QUEUE, FAST_ACTOR, [4, 5]),
        (FAST_QUEUE, FAST_ACTOR, [6]),
        (QUEUE, "deliver_batch", [1, 2]),
        (QUEUE, "deliver", 3),
    ]
