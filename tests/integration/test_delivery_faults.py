"""Provider faults, rate limits, lost messages, dead workers: nothing twice, nothing lost."""

from __future__ import annotations

import collections
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import dramatiq
from sqlalchemy import func, select, update

from automation.processes.runtime import QUEUE
from automation.processes.tick import LOCK_KEY, tick
from automation.store.models import Delivery
from tests.deliverykit import (
    event,
    flow,
    kill_worker,
    kit_env,
    kit_settings,
    make_flow,
    person,
    start_worker,
    stop_worker,
    wait_for,
)
from tests.harness import Flow, cli, utc
from tests.standins import Reply, SendGridStandIn, TwilioStandIn

__all__ = ["flow", "kit_env", "kit_settings", "make_flow"]

NOW = "2026-11-22T12:00:00Z"
EARLIER = "2026-11-22T11:00:00Z"


def one_receipt(flow: Flow, cid: str = "ada", kind: str = "receipt") -> None:
    flow.ingest([person(cid), event(cid, kind, EARLIER)])


# ----------------------------------------------------------------- retries


def test_429_and_503_are_retried_honouring_retry_after(flow: Flow, sendgrid: SendGridStandIn) -> None:
    sendgrid.queue(
        Reply(429, {"errors": [{"message": "too many requests"}]}, {"Retry-After": "1"}),
        Reply(503, {"errors": [{"message": "service unavailable"}]}),
    )
    one_receipt(flow)
    started = time.monotonic()
    flow.run(NOW)
    elapsed = time.monotonic() - started
    [row] = flow.deliveries()
    assert (row.status, row.attempts) == ("sent", 3)
    assert elapsed >= 1.0  # Retry-After: 1 was waited for (the backoff alone is 10-200 ms here)
    assert len(sendgrid.accepted) == 1


def test_sendgrid_rate_limit_reset_is_honoured(flow: Flow, sendgrid: SendGridStandIn) -> None:
    reset = int(time.time()) + 2
    sendgrid.queue(Reply(429, {"errors": [{"message": "slow down"}]}, {"X-RateLimit-Reset": str(reset)}))
    one_receipt(flow)
    flow.run(NOW)
    [row] = flow.deliveries()
    assert row.status == "sent"
    assert sendgrid.accepted[0].at >= reset - 0.05


def test_twilio_429_and_5xx_are_retried(flow: Flow, twilio: TwilioStandIn) -> None:
    twilio.queue(
        Reply(429, {"code": 20429, "message": "Too Many Requests", "status": 429}),
        Reply(500, {"code": 20500, "message": "Internal error", "status": 500}),
    )
    one_receipt(flow, kind="text")
    flow.run(NOW)
    [row] = flow.deliveries()
    assert (row.status, row.attempts) == ("sent", 3)
    assert len(twilio.accepted) == 1


def test_retries_stop_at_max_attempts(make_flow, sendgrid: SendGridStandIn) -> None:
    flow = make_flow(max_attempts=3)
    sendgrid.queue(*[Reply(503, {"errors": [{"message": "service unavailable"}]}) for _ in range(4)])
    one_receipt(flow)
    flow.run(NOW)
    [row] = flow.deliveries()
    assert row.status == "failed" and row.attempts == 3
    assert row.reason == "gave up after 3 attempts: sendgrid 503: service unavailable"
    assert len(sendgrid.script) == 1  # the fourth answer was never asked for
    assert sendgrid.accepted == []


def test_a_slow_provider_times_out_and_is_retried(
    make_flow, sendgrid: SendGridStandIn, twilio: TwilioStandIn
) -> None:
    flow = make_flow(provider_timeout_s=0.5)
    sendgrid.queue(Reply(202, None, {"X-Message-Id": "sg-slow"}, delay_s=2.0))
    twilio.queue(Reply(201, {"sid": "SMslow", "status": "queued"}, {}, delay_s=2.0))
    flow.ingest(
        [person("ada"), person("bob"), event("ada", "receipt", EARLIER), event("bob", "text", EARLIER)]
    )
    started = time.monotonic()
    flow.run(NOW)
    assert time.monotonic() - started < 10
    for row in flow.deliveries():
        assert (row.status, row.attempts) == ("sent", 2), row.reason
        assert row.provider_message_id not in ("sg-slow", "SMslow")
    # The honest limit of a read timeout: the provider may have taken the first request too.
    assert len(sendgrid.accepted) == 2 and len(twilio.accepted) == 2


# ----------------------------------------------------------------- rate limits


def test_two_worker_processes_together_stay_under_the_rate(
    make_flow: Callable[..., Flow], kit_env: dict[str, str], sendgrid: SendGridStandIn, tmp_path: Path
) -> None:
    """The limit counts provider requests; with batches off, one request is one email."""
    flow = make_flow(email_batch_size=1)
    rate, count = 4, 24
    flow.ingest([r for n in range(count) for r in (person(f"c{n}"), event(f"c{n}", "receipt", EARLIER))])
    assert flow.tick(NOW).enqueued == count
    env = {**kit_env, "AUTOMATION_EMAIL_RATE_PER_S": str(rate)}
    workers = [start_worker(env, tmp_path / "a.log"), start_worker(env, tmp_path / "b.log")]
    try:
        assert wait_for(lambda: len(sendgrid.accepted) >= count, timeout=90)
    finally:
        codes = [stop_worker(w) for w in workers]
    times = sorted(m.at for m in sendgrid.accepted)
    per_second = collections.Counter(int(t) for t in times)
    # Dramatiq's bucket limiter counts per calendar second of the worker's acquisition; a request
    # acquired late in one second may arrive in the next, so one arrival second can see two buckets.
    assert max(per_second.values()) <= 2 * rate, per_second
    assert codes == [0, 0]
    # Spanning calendar seconds k..k+m allows rate*(m+1) sends in a little over m-1 seconds.
    assert (count - 2 * rate) / (times[-1] - times[0]) <= rate * 1.1
    assert len(sendgrid.accepted) == count
    assert {r.status for r in flow.deliveries()} == {"sent"}


# ----------------------------------------------------------------- no duplicates


def test_a_second_scheduler_is_locked_out(flow: Flow, kit_env: dict[str, str]) -> None:
    one_receipt(flow)
    with flow.runtime.engine.connect() as holder:
        assert holder.scalar(select(func.pg_try_advisory_lock(LOCK_KEY)))
        report = flow.tick(NOW)
        assert report.locked_out and report.enqueued == 0
        other = cli("tick", "--now", NOW, env=kit_env)
        assert other.returncode == 0 and "another scheduler holds the tick lock" in other.stdout
        holder.scalar(select(func.pg_advisory_unlock(LOCK_KEY)))
    assert flow.tick(NOW).enqueued == 1


def test_a_message_delivered_twice_sends_once(flow: Flow, sendgrid: SendGridStandIn) -> None:
    one_receipt(flow)
    flow.tick(NOW)
    [row] = flow.deliveries()
    for _ in range(3):
        flow.broker.enqueue(
            dramatiq.Message(queue_name=QUEUE, actor_name="deliver", args=(row.id,), kwargs={}, options={})
        )
    flow.drain()
    assert len(sendgrid.accepted) == 1 and flow.deliveries()[0].status == "sent"


# ----------------------------------------------------------------- no loss


def test_a_delivery_never_enqueued_is_swept_after_the_grace(flow: Flow, sendgrid: SendGridStandIn) -> None:
    one_receipt(flow)
    rt = flow.runtime
    report = tick(rt.engine, rt.sessions, rt.catalog, utc(NOW), lambda queued: None)  # died before enqueue
    assert report.deliveries == 1 and flow.queued_messages() == 0
    grace = dt.timedelta(seconds=flow.settings.sweep_grace_s)
    assert flow.run((utc(NOW) + grace - dt.timedelta(seconds=1)).isoformat()).swept == 0
    assert sendgrid.accepted == []
    assert flow.run((utc(NOW) + grace + dt.timedelta(seconds=1)).isoformat()).swept == 1
    assert len(sendgrid.accepted) == 1 and flow.deliveries()[0].status == "sent"
    flow.run((utc(NOW) + 3 * grace).isoformat())
    assert len(sendgrid.accepted) == 1


def test_stale_claims_are_resumed_and_stale_sends_become_unknown(
    flow: Flow, sendgrid: SendGridStandIn
) -> None:
    flow.ingest(
        [person("ada"), person("bob"), event("ada", "receipt", EARLIER), event("bob", "receipt", EARLIER)]
    )
    rt = flow.runtime
    tick(rt.engine, rt.sessions, rt.catalog, utc(NOW), lambda queued: None)
    ada, bob = flow.deliveries()
    with rt.sessions.begin() as s:  # their messages were lost with Redis: one claimed, one mid-send
        claimed = {"status": "claimed", "message_id": "lost-1", "claimed_at": utc(NOW)}
        s.execute(update(Delivery).where(Delivery.id == ada.id).values(**claimed))
        sending = {"status": "sending", "message_id": "lost-2", "claimed_at": utc(NOW)}
        s.execute(update(Delivery).where(Delivery.id == bob.id).values(**sending))
    lease = dt.timedelta(seconds=flow.settings.claim_lease_s)
    report = flow.run((utc(NOW) + lease + dt.timedelta(seconds=1)).isoformat())
    assert (report.swept, report.unknown) == (1, 1)
    ada, bob = flow.deliveries()
    assert ada.status == "sent"
    assert bob.status == "unknown" and "not re-sent" in (bob.reason or "")
    assert [m["to"] for m in sendgrid.messages()] == ["ada@example.com"]


def test_the_claim_lease_runs_from_the_claim_not_from_the_enqueue(
    flow: Flow, sendgrid: SendGridStandIn
) -> None:
    one_receipt(flow)
    rt = flow.runtime
    tick(rt.engine, rt.sessions, rt.catalog, utc(NOW), lambda queued: None)
    [row] = flow.deliveries()
    lease = dt.timedelta(seconds=flow.settings.claim_lease_s)
    claimed_at = utc(NOW) + dt.timedelta(minutes=10)  # the message waited ten minutes in Redis
    with rt.sessions.begin() as s:
        s.execute(
            update(Delivery)
            .where(Delivery.id == row.id)
            .values(status="claimed", message_id="lost", claimed_at=claimed_at)
        )
    assert flow.run((utc(NOW) + lease + dt.timedelta(seconds=1)).isoformat()).swept == 0
    assert flow.deliveries()[0].status == "claimed" and sendgrid.accepted == []
    assert flow.run((claimed_at + lease + dt.timedelta(seconds=1)).isoformat()).swept == 1
    assert flow.deliveries()[0].status == "sent" and len(sendgrid.accepted) == 1


def test_a_claim_is_stamped_on_the_clock_of_the_tick_that_enqueued_it(flow: Flow) -> None:
    one_receipt(flow)
    flow.run(NOW)
    [row] = flow.deliveries()
    assert row.status == "sent" and row.claimed_at is not None
    assert utc(NOW) <= row.claimed_at < utc(NOW) + dt.timedelta(seconds=60)


def test_the_same_message_finding_its_own_send_marks_it_unknown(
    flow: Flow, sendgrid: SendGridStandIn
) -> None:
    one_receipt(flow)
    flow.tick(NOW)
    [row] = flow.deliveries()
    with flow.runtime.sessions.begin() as s:
        s.execute(update(Delivery).where(Delivery.id == row.id).values(status="sending", message_id="m-1"))
    assert flow.deliverer.deliver(row.id, "m-1") == "unknown"
    assert flow.deliverer.deliver(row.id, "m-2") == "dropped"
    assert flow.deliveries()[0].status == "unknown" and sendgrid.accepted == []


def test_a_worker_killed_mid_send_leaves_unknown(
    flow: Flow, kit_env: dict[str, str], sendgrid: SendGridStandIn, tmp_path: Path
) -> None:
    """SIGKILL during the provider call: the redelivered message finds its own `sending` row."""
    sendgrid.queue(Reply(202, None, {"X-Message-Id": "sg-slow"}, delay_s=3.0))
    one_receipt(flow)
    flow.tick(NOW)
    env = {**kit_env, "AUTOMATION_HEARTBEAT_TIMEOUT_MS": "3000", "AUTOMATION_MAINTENANCE_CHANCE": "100000"}
    first = start_worker(env, tmp_path / "worker.log", threads=1)
    try:
        assert wait_for(lambda: len(sendgrid.accepted) == 1, timeout=60)
    finally:
        kill_worker(first)
    assert flow.deliveries()[0].status == "sending"
    killed_at = time.monotonic()
    second = start_worker(env, tmp_path / "worker.log", threads=1)
    try:
        assert wait_for(lambda: flow.deliveries()[0].status == "unknown", timeout=60)
        recovery_s = time.monotonic() - killed_at
    finally:
        stop_worker(second)
    print(f"redelivered after {recovery_s:.1f} s")
    assert recovery_s < 30
    assert len(sendgrid.accepted) == 1
    listed = cli("deliveries", "list", "--status", "unknown", env={**kit_env, "COLUMNS": "200"})
    assert "receipt" in listed.stdout and "1 deliveries shown" in listed.stdout
