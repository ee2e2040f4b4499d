"""The pipelined enqueue writes what Dramatiq's own enqueue writes: stock workers consume it."""

from __future__ import annotations

import threading

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from automation.processes.enqueue import PipelinedRedisBroker, enqueue_many
from tests.conftest import REDIS_URL


def messages(n: int) -> list[dramatiq.Message]:
    return [
        dramatiq.Message(queue_name="q", actor_name="note", args=(i,), kwargs={}, options={})
        for i in range(n)
    ]


def test_a_stock_worker_consumes_every_pipelined_message_once(redis_namespace: str) -> None:
    producer = PipelinedRedisBroker(url=REDIS_URL, namespace=redis_namespace)
    consumer = RedisBroker(url=REDIS_URL, namespace=redis_namespace)
    seen: list[int] = []
    lock = threading.Lock()

    @dramatiq.actor(actor_name="note", queue_name="q", broker=consumer)
    def note(i: int) -> None:
        with lock:
            seen.append(i)

    consumer.declare_queue("q")
    assert enqueue_many(producer, messages(2500)) == 2500
    assert consumer.do_qsize("q") == 2500  # type: ignore[attr-defined]

    worker = dramatiq.Worker(consumer, worker_threads=4, worker_timeout=100)
    worker.start()
    try:
        consumer.join("q")
        worker.join()
    finally:
        worker.stop()
    assert sorted(seen) == list(range(2500))
    producer.close()
    consumer.close()


def test_other_brokers_fall_back_to_their_own_enqueue() -> None:
    broker = StubBroker()
    broker.declare_queue("q")
    assert enqueue_many(broker, messages(3)) == 3
    assert broker.queues["q"].qsize() == 3
