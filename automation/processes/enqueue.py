"""Enqueueing many Dramatiq messages at once, behind Dramatiq's broker interface.

Dramatiq's `RedisBroker.enqueue` is one Lua call and one network round trip per
message (about 4,400 messages/s on a small machine), so a tick that makes
50,000 deliveries would spend over ten seconds enqueueing them. The Redis broker
here runs the very same dispatch script with the very same arguments for each
message, but sends them through a Redis pipeline, a chunk per round trip. The
messages on Redis are byte for byte what `enqueue` writes, so stock Dramatiq
workers consume them. Any other broker falls back to its own `enqueue`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from uuid import uuid4

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis

PIPELINE_CHUNK = 1000


def _chunks(messages: Iterable[dramatiq.Message], size: int) -> Iterator[list[dramatiq.Message]]:
    it = iter(messages)
    while chunk := list(islice(it, size)):
        yield chunk


class PipelinedRedisBroker(RedisBroker):
    """A `RedisBroker` with `enqueue_many`: the same enqueue, pipelined in chunks."""

    def enqueue_many(
        self, messages: Iterable[dramatiq.Message], chunk: int = PIPELINE_CHUNK
    ) -> list[dramatiq.Message]:
        """Enqueue messages without delay, one pipeline round trip per `chunk`.

        Parameters:
          messages: the messages, as they would be given to `enqueue`.
          chunk: how many enqueue calls share one round trip.

        Returns:
          the messages as enqueued (with their `redis_message_id`), in order.
        """
        dispatch = self.scripts["dispatch"]
        keys = [self.namespace]
        done: list[dramatiq.Message] = []
        for batch in _chunks(messages, chunk):
            pipe = self.client.pipeline(transaction=False)
            sent = []
            for original in batch:
                message = original.copy(options={"redis_message_id": str(uuid4())})
                self.emit_before("enqueue", message, None)
                args = [
                    "enqueue",
                    current_millis(),
                    message.queue_name,
                    self.broker_id,
                    self.heartbeat_timeout,
                    self.dead_message_ttl,
                    self._should_do_maintenance("enqueue"),
                    self._max_unpack_size(),
                    message.options["redis_message_id"],
                    message.encode(),
                ]
                dispatch(keys=keys, args=args, client=pipe)
                sent.append(message)
            pipe.execute()
            for message in sent:
                self.emit_after("enqueue", message, None)
            done.extend(sent)
        return done


def enqueue_many(broker: dramatiq.Broker, messages: Iterable[dramatiq.Message]) -> int:
    """Enqueue every message: pipelined on `PipelinedRedisBroker`, else one by one; returns the count."""
    if isinstance(broker, PipelinedRedisBroker):
        return len(broker.enqueue_many(messages))
    count = 0
    for message in messages:
        broker.enqueue(message)
        count += 1
    return count
