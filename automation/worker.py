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
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage, Middleware

from automation import providers
from automation.config import Settings, load_settings
from automation.delivery import Deliverer, RetryLater
from automation.errors import UserError
from automation.runtime import QUEUE, build_runtime, make_broker
from automation.worker_metrics import add_worker_metrics, note_status

_lock = threading.Lock()
_deliverer: Deliverer | None = None


def _throttle_for(settings: Settings, broker: dramatiq.Broker) -> Any:
    """Per-provider bucket rate limits on Redis, shared by every worker process."""
    from dramatiq.rate_limits import BucketRateLimiter
    from dramatiq.rate_limits.backends import RedisBackend

    backend = RedisBackend(url=settings.redis_url)
    limiters = {
        "email": BucketRateLimiter(
            backend, f"{settings.redis_namespace}:rate:email", limit=settings.email_rate_per_s, bucket=1000
        ),
        "sms": BucketRateLimiter(
            backend, f"{settings.redis_namespace}:rate:sms", limit=settings.sms_rate_per_s, bucket=1000
        ),
    }

    @contextmanager
    def throttle(channel: str) -> Iterator[bool]:
        with limiters[channel].acquire(raise_on_failure=False) as acquired:
            yield bool(acquired)

    return throttle


def build_deliverer(settings: Settings, broker: dramatiq.Broker) -> Deliverer:
    runtime = build_runtime(settings)
    kwargs: dict[str, Any] = {}
    if settings.redis_url:
        kwargs["throttle"] = _throttle_for(settings, broker)
    return Deliverer(
        runtime.sessions,
        runtime.catalog,
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
            _deliverer = build_deliverer(load_settings(), dramatiq.get_broker())
        return _deliverer


class ValidateOnBoot(Middleware):
    """Refuse to start a worker on invalid journeys or an unreachable database."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        # The Twilio SDK logs every request's headers at INFO.
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
        try:
            _current()
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None


def _setup() -> dramatiq.Broker:
    try:
        settings = load_settings()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    broker = make_broker(settings)
    if settings.redis_url:
        broker.add_middleware(ValidateOnBoot())
    if settings.worker_metrics:
        add_worker_metrics(broker)
    dramatiq.set_broker(broker)
    return broker


broker = _setup()


@dramatiq.actor(actor_name="deliver", queue_name=QUEUE, max_retries=None, time_limit=300_000)
def deliver(delivery_id: int) -> None:
    """Deliver one ledger row; a transient provider error becomes a Dramatiq retry."""
    message = CurrentMessage.get_current_message()
    assert message is not None
    try:
        note_status(_current().deliver(delivery_id, message.message_id))
    except RetryLater as exc:
        raise dramatiq.Retry(str(exc), delay=exc.delay_ms) from None


def bind(other: dramatiq.Broker) -> None:
    """Serve `deliver` from another broker (the CLI's and the tests' own)."""
    deliver.broker = other
    other.declare_actor(deliver)
