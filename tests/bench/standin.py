"""The SendGrid stand-in with the time each request was accepted, keyed by its delivery id."""

from __future__ import annotations

import threading
import time

from tests.standins import Received, SendGridStandIn


class TimedSendGrid(SendGridStandIn):
    """Keeps (delivery id, acceptance time) per recipient instead of whole requests, to stay small at scale.

    The acceptance time is when the reply leaves, after the configured delay.
    """

    def __init__(self) -> None:
        super().__init__()
        self.times: dict[str, float] = {}
        self.requests = 0
        self.first_body: dict | None = None
        self.count_lock = threading.Lock()

    def record(self, item: Received, accepted: bool) -> None:
        if not accepted:
            return
        keys = [p.get("custom_args", {}).get("delivery_id", "") for p in item.body["personalizations"]]
        at = time.time() + self.delay_s
        with self.count_lock:
            if self.first_body is None:
                self.first_body = item.body
            self.requests += 1
            self.times.update(dict.fromkeys(keys, at))

    def accepted_count(self) -> int:
        with self.count_lock:
            return len(self.times)
