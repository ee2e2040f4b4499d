"""The Dramatiq side: what `dramatiq automation.worker` imports.

Importing this module sets the broker (Redis when REDIS_URL is set), as
Dramatiq's CLI requires, and declares the `deliver` actor. Everything else
(database, journeys, providers) is built on the first message, once per
process, and the journeys are validated when a worker boots.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import dramatiq
from dramatiq.middleware import CurrentMessage, Middleware

from automation import providers
from automation.config import Settings, load_settings, require_safe_to_send
from automation.core.statuses import Channel
from automation.deliver.deliverer import Deliverer, RetryLater
from automation.errors import UserError, report_lines
from automation.processes.runtime import BATCH_ACTOR, QUEUE, build_runtime, make_broker
from automation.processes.worker_metrics import add_worker_metrics, note_status

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


def _current() -> Deliverer:
    global _deliverer
    with _lock:
        if _deliverer is None:
            _deliverer = build_deliverer(load_settings())
        return _deliverer


class ValidateOnBoot(Middleware):
    """Refuse to start a worker on invalid journeys, an unreachable database or unsafe settings."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        # The Twilio SDK logs every request's headers at INFO.
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
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


def _run(ids: list[int]) -> str:
    """Deliver these rows for the current message; a transient provider error becomes a Dramatiq retry."""
    message = CurrentMessage.get_current_message()
    assert message is not None
    try:
        statuses = _current().deliver_many(ids, message.message_id)
    except RetryLater as exc:
        raise dramatiq.Retry(str(exc), delay=exc.delay_ms) from None
    return statuses[ids[0]] if len(ids) == 1 else "batch"


@dramatiq.actor(actor_name="deliver", queue_name=QUEUE, max_retries=None, time_limit=300_000)
def deliver(delivery_id: int) -> None:
    """Deliver one ledger row."""
    note_status(_run([delivery_id]))


@dramatiq.actor(actor_name=BATCH_ACTOR, queue_name=QUEUE, max_retries=None, time_limit=600_000)
def deliver_batch(delivery_ids: list[int]) -> None:
    """Deliver the email rows of one journey step, as few provider requests as their bodies allow."""
    note_status(_run(delivery_ids))


def bind(other: dramatiq.Broker) -> None:
    """Serve the actors from another broker (the CLI's and the tests' own)."""
    for actor in (deliver, deliver_batch):
        actor.broker = other
        other.declare_actor(actor)
