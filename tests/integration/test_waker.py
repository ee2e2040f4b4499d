"""The web process's waker: a stream of wakes costs a publish per gap, and a wake after it another."""

from __future__ import annotations

import time

import redis

from automation.processes.wakeup import GAP_S, Waker, channel
from tests.conftest import REDIS_URL


def _published(pubsub: redis.client.PubSub, timeout_s: float) -> int:
    """Wakes heard: the first within `timeout_s`, then any that follow closely."""
    heard = 0
    wait_s = timeout_s
    while pubsub.get_message(timeout=wait_s) is not None:
        heard += 1
        wait_s = 0.3
    return heard


def test_a_burst_of_wakes_is_published_and_a_later_wake_again(redis_namespace: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel(redis_namespace))
    pubsub.get_message(timeout=1.0)
    waker = Waker(REDIS_URL, redis_namespace)
    try:
        started = time.monotonic()
        for _ in range(200):
            waker.wake()
            time.sleep(0.001)  # a stream of requests over about a fifth of a second
        streamed_s = time.monotonic() - started
        assert 1 <= _published(pubsub, timeout_s=5.0) <= streamed_s / GAP_S + 2
        waker.wake()
        assert _published(pubsub, timeout_s=5.0) >= 1
    finally:
        waker.close()
        pubsub.close()
        client.close()
