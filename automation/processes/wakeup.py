"""Waking the scheduler when the tracking API has stored new events (Redis pub/sub).

The web process publishes on `<namespace>:wake` after a commit; the scheduler
runs a tick as soon as it hears it, besides its interval. Wakes that arrive
during a tick coalesce into one more tick after it, so none is lost and ticks
never overlap. A lost connection is retried, and the first tick after it
catches up on anything published meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

log = logging.getLogger("automation.processes.wakeup")

RETRY_S = 1.0
#: The least time between two publishes: under a stream of requests a publish (a Redis round trip
#: in its own thread) per request was a twentieth of the web process's time, and the scheduler
#: ticks once per burst anyway. A wake waits this long at most.
GAP_S = 0.05


def channel(namespace: str) -> str:
    return f"{namespace}:wake"


class Waker:
    """The web process's side: publish a wake, never failing (nor delaying) the request that asked.

    `wake` only marks that one is wanted; a publisher thread sends one wake per burst of
    marks, and waits `GAP_S` after each. A mark made while a wake is being published, or
    during the gap, gets another after it, so every commit is followed by a publish that
    began after it, at one Redis call per burst rather than one per request.
    """

    def __init__(self, url: str, namespace: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.channel = channel(namespace)
        self.wanted = threading.Event()
        self.closing = False
        self.thread = threading.Thread(target=self._publisher, name="waker", daemon=True)
        self.thread.start()

    def wake(self) -> None:
        self.wanted.set()

    def _publisher(self) -> None:
        while True:
            self.wanted.wait()
            self.wanted.clear()
            if self.closing:
                return
            self._publish()
            time.sleep(GAP_S)

    def _publish(self) -> None:
        try:
            self.client.publish(self.channel, b"1")
        except redis.RedisError as exc:
            log.warning("cannot wake the scheduler (%s); it will tick on its interval", type(exc).__name__)

    def close(self) -> None:
        self.closing = True
        self.wanted.set()
        self.thread.join()
        self.client.close()


class Wakeups:
    """The scheduler's side: a listener thread and a thread that runs `run` once per burst of wakes."""

    def __init__(self, url: str, namespace: str, run: Callable[[], None]) -> None:
        self.url = url
        self.channel = channel(namespace)
        self.run = run
        self.pending = threading.Event()
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._listen, name="wake-listener", daemon=True),
            threading.Thread(target=self._runner, name="wake-runner", daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        """Stop taking wakes; a tick already running finishes first."""
        self.stopping.set()
        self.pending.set()
        self.threads[1].join()

    def _listen(self) -> None:
        while not self.stopping.is_set():
            client = redis.Redis.from_url(self.url, socket_connect_timeout=2, health_check_interval=30)
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                self.pending.set()
                while not self.stopping.is_set():
                    if pubsub.get_message(timeout=1.0) is not None:
                        self.pending.set()
            except redis.RedisError as exc:
                log.warning("wake-ups paused (%s); retrying", type(exc).__name__)
                time.sleep(RETRY_S)
            finally:
                client.close()

    def _runner(self) -> None:
        while True:
            self.pending.wait()
            if self.stopping.is_set():
                return
            self.pending.clear()
            try:
                self.run()
            except Exception as exc:
                log.error("a tick on wake-up failed (%s); the next one will retry", type(exc).__name__)
