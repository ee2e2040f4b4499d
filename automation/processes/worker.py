"""The Dramatiq side: what `dramatiq automation.worker` imports.

Importing this module sets the broker (Redis when REDIS_URL is set), as
Dramatiq's CLI requires, and declares the actors: `deliver` and `deliver_batch`
on the bulk queue, `deliver_transactional` on the fast lane. A worker consumes
both queues, each with its own prefetch, and runs a fetched fast-lane message
before any fetched bulk one (actor priority), so a campaign backlog delays a
receipt by at most the bulk messages already running. Everything else
(database, journeys, providers) is built on the first message, once per
process, and the journeys are validated when a worker boots.

Retries are bounded. Dramatiq retries only the waits the deliverer asks for
(`dramatiq.Retry`: a provider's 429/5xx, within AUTOMATION_MAX_ATTEMPTS, or a
rate limit). Any other error fails the message's rows alone, with no row
blocking the others (a row's own failure is settled inside the deliverer); an
error of the whole message (the database away, say) is retried
AUTOMATION_WORKER_ERROR_RETRIES times with backoff, then a batch is split into
one message per row, and a single row is marked `failed`. When even that write
fails, the rows stay `queued` or `claimed` for the tick's sweep.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import dramatiq
from dramatiq.middleware import CurrentMessage, Middleware

from automation import providers
from automation.config import Settings, load_settings, require_safe_to_send
from automation.core import rules
from automation.core.statuses import Channel
from automation.deliver.deliverer import Deliverer, RetryLater
from automation.errors import UserError, report_lines
from automation.processes import logs
from automation.processes.runtime import (
    BATCH_ACTOR,
    BULK_PRIORITY,
    FAST_ACTOR,
    FAST_PRIORITY,
    FAST_QUEUE,
    QUEUE,
    build_runtime,
    make_broker,
)
from automation.processes.worker_metrics import add_worker_metrics, note_status

log = logging.getLogger("automation.processes.worker")
_lock = threading.Lock()
_deliverer: Deliverer | None = None


def _throttle_for(settings: Settings) -> Any:
    """Per-provider bucket rate limits on Redis, shared by every worker process.

    One token per provider request; a channel without a configured rate costs no Redis call.
    """
    from dramatiq.rate_limits import BucketRateLimiter
    from dramatiq.rate_limits.backends import RedisBackend

    backend = RedisBackend(url=settings.redis_url)
    rates: dict[str, float | None] = {
        Channel.EMAIL: settings.email_rate_per_s,
        Channel.SMS: settings.sms_rate_per_s,
    }
    limiters = {
        channel: BucketRateLimiter(
            backend, f"{settings.redis_namespace}:rate:{channel}", limit=rate, bucket=1000
        )
        for channel, rate in rates.items()
        if rate
    }

    @contextmanager
    def throttle(channel: str) -> Iterator[bool]:
        limiter = limiters.get(channel)
        if limiter is None:
            yield True
            return
        with limiter.acquire(raise_on_failure=False) as acquired:
            yield bool(acquired)

    return throttle


def build_deliverer(settings: Settings) -> Deliverer:
    runtime = build_runtime(settings, pre_ping=False)
    kwargs: dict[str, Any] = {}
    if settings.redis_url:
        kwargs["throttle"] = _throttle_for(settings)
    return Deliverer(
        runtime.sessions,
        runtime.catalogs,
        settings,
        providers.email_provider(settings),
        providers.sms_provider(settings),
        **kwargs,
    )


def install(deliverer: Deliverer | None) -> None:
    """Use this deliverer in this process (the CLI and tests build their own)."""
    global _deliverer
    with _lock:
        _deliverer = deliverer


def _settings() -> Settings:
    """The running deliverer's settings (tests install their own), else the environment's."""
    with _lock:
        current = _deliverer
    return current.settings if current is not None else load_settings()


def _current() -> Deliverer:
    global _deliverer
    with _lock:
        if _deliverer is None:
            _deliverer = build_deliverer(load_settings())
        return _deliverer


class ValidateOnBoot(Middleware):
    """Refuse to start a worker on invalid journeys, an unreachable database or unsafe settings."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        logs.guard()
        try:
            require_safe_to_send(load_settings())
            _current()
        except UserError as exc:
            _refuse(exc)


def _refuse(exc: UserError) -> NoReturn:
    print("\n".join(report_lines(exc)), file=sys.stderr, flush=True)
    raise SystemExit(1) from None


def _setup() -> dramatiq.Broker:
    try:
        settings = load_settings()
    except UserError as exc:
        _refuse(exc)
    broker = make_broker(settings)
    if settings.redis_url:
        broker.add_middleware(ValidateOnBoot())
    if settings.worker_metrics:
        add_worker_metrics(broker)
    dramatiq.set_broker(broker)
    return broker


broker = _setup()


def claim_instant(message: dramatiq.Message) -> dt.datetime | None:
    """When this claim happens on the clock of the tick that enqueued the message.

    The tick's `now` (carried in the message's options) plus the time the message
    has spent since it was made: the wall clock in production, simulated time
    under `automation tick --now`. It stamps `claimed_at`; nothing is decided by it.
    """
    tick_at = message.options.get("tick_at")
    if not isinstance(tick_at, str):
        return None
    elapsed_ms = max(0, int(time.time() * 1000) - int(message.message_timestamp))
    return dt.datetime.fromisoformat(tick_at) + dt.timedelta(milliseconds=elapsed_ms)


def _where(exc: BaseException) -> str:
    """`module:line` of the innermost frame of this package: where, without what (no data)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/automation/" in f.filename]
    if not frames:
        return "outside automation"
    inner = frames[-1]
    return f"{inner.filename.rsplit('/automation/', 1)[1]}:{inner.lineno}"


def retry_when(_retries: int, exc: BaseException) -> bool:
    """Retry only the waits asked for with `dramatiq.Retry`; `_run` handles every other error."""
    return isinstance(exc, dramatiq.Retry)


def _failed(message: dramatiq.Message, ids: list[int], exc: Exception) -> str:
    """A whole message failed: retry it a few times, then split a batch, then fail the row."""
    settings = _settings()
    errors = int(message.options.get("worker_errors", 0)) + 1
    message.options["worker_errors"] = errors
    kind = type(exc).__name__
    log.error(
        "message %s (%d deliveries) failed with %s at %s (error %d of at most %d)",
        message.message_id,
        len(ids),
        kind,
        _where(exc),
        errors,
        settings.worker_error_retries + 1,
    )
    if errors <= settings.worker_error_retries:
        delay = rules.retry_delay_ms(
            errors, None, settings.retry_min_backoff_ms, settings.retry_max_backoff_ms, random.random()
        )
        raise dramatiq.Retry(f"worker error {kind}", delay=delay) from None
    if len(ids) > 1:
        carried = {"tick_at": message.options["tick_at"]} if "tick_at" in message.options else {}
        fast = message.actor_name == FAST_ACTOR
        for delivery_id in ids:
            if fast:
                deliver_transactional.send_with_options(args=([delivery_id],), **carried)
            else:
                deliver.send_with_options(args=(delivery_id,), **carried)
        log.warning("message %s split into %d messages of one delivery", message.message_id, len(ids))
        return "split"
    try:
        _current().give_up(ids, message.message_id, f"gave up after {errors} worker errors ({kind})")
    except Exception as again:
        log.error(
            "could not mark delivery %s failed (%s); the sweep will re-queue it", ids[0], type(again).__name__
        )
    return "failed"


def _run(ids: list[int]) -> str:
    """Deliver these rows for the current message; a transient provider error becomes a Dramatiq retry."""
    message = CurrentMessage.get_current_message()
    assert message is not None
    try:
        statuses = _current().deliver_many(ids, message.message_id, claim_instant(message))
    except RetryLater as exc:
        raise dramatiq.Retry(str(exc), delay=exc.delay_ms) from None
    except Exception as exc:
        return _failed(message, ids, exc)
    return statuses[ids[0]] if len(ids) == 1 else "batch"


def _delivering(name: str, queue: str, priority: int, time_limit_ms: int) -> Any:
    """The actor decorator of one way of delivering: the same retry rule on every lane."""
    return dramatiq.actor(
        actor_name=name, queue_name=queue, priority=priority, retry_when=retry_when, time_limit=time_limit_ms
    )


@_delivering("deliver", QUEUE, BULK_PRIORITY, 300_000)
def deliver(delivery_id: int) -> None:
    """Deliver one ledger row."""
    note_status(_run([delivery_id]))


@_delivering(BATCH_ACTOR, QUEUE, BULK_PRIORITY, 600_000)
def deliver_batch(delivery_ids: list[int]) -> None:
    """Deliver the email rows of one journey step, as few provider requests as their bodies allow."""
    note_status(_run(delivery_ids))


@_delivering(FAST_ACTOR, FAST_QUEUE, FAST_PRIORITY, 600_000)
def deliver_transactional(delivery_ids: list[int]) -> None:
    """Deliver rows of a transactional journey (one, or a step's emails in a batch) on the fast lane."""
    note_status(_run(delivery_ids))


def bind(other: dramatiq.Broker) -> None:
    """Serve the actors from another broker (the CLI's and the tests' own)."""
    for actor in (deliver, deliver_batch, deliver_transactional):
        actor.broker = other
        other.declare_actor(actor)
