"""How ingest hands batches to its lanes: one customer per lane, shared event keys in file order."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from automation.core.records import Track
from automation.ingest.load import Batch, _Lane, _Outcome, _Writers, lane_of

AT = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)


def customers_in_lanes() -> tuple[str, str]:
    """One customer id in lane 0 and one in lane 1."""
    ids = [f"c{n}" for n in range(20)]
    return next(c for c in ids if lane_of(c, 2) == 0), next(c for c in ids if lane_of(c, 2) == 1)


def order(number: int, cid: str, key: str) -> tuple[int, Track]:
    return number, Track(cid, "order_placed", key, AT, {})


class GatedExecutor(ThreadPoolExecutor):
    """Its batches wait until someone waits for them, so a lane is busy exactly until collected."""

    def __init__(self, log: list[str]) -> None:
        super().__init__(max_workers=1)
        self.log = log

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.log.append("submit " + numbers(args[-1]))
        gate = threading.Event()

        def gated() -> Any:
            gate.wait()
            return fn(*args, **kwargs)

        inner = super().submit(gated)
        outer: Future[Any] = Future()
        outer.result = lambda timeout=None: (gate.set(), inner.result(timeout))[1]  # type: ignore[method-assign]
        return outer


def numbers(batch: Batch) -> str:
    return ",".join(str(n) for n, _ in batch)


def run_writers(batches: list[Batch]) -> list[str]:
    """Every submit, start and end, in the order they happened."""
    log: list[str] = []
    lock = threading.Lock()

    def run(_connection: Any, batch: Batch) -> _Outcome:
        with lock:
            log.append("start " + numbers(batch))
        with lock:
            log.append("end " + numbers(batch))
        return _Outcome(len(batch), applied=len(batch))

    executors = [GatedExecutor(log), GatedExecutor(log)]
    writers = _Writers([_Lane(e, None) for e in executors], run, lambda _outcome: None)  # type: ignore[arg-type]
    for batch in batches:
        writers.submit(batch)
    writers.drain()
    for e in executors:
        e.shutdown()
    return log


def test_a_later_batch_sharing_an_event_key_waits_for_the_other_lane() -> None:
    first, second = customers_in_lanes()
    log = run_writers([[order(1, first, "o-1")], [order(2, second, "o-1")]])
    assert log == ["submit 1", "start 1", "end 1", "submit 2", "start 2", "end 2"]


def test_a_batch_whose_lanes_share_an_event_key_is_applied_whole() -> None:
    first, second = customers_in_lanes()
    log = run_writers([[order(1, first, "o-1"), order(2, second, "o-1"), order(3, second, "o-2")]])
    assert log == ["submit 1,2,3", "start 1,2,3", "end 1,2,3"]


def test_batches_without_shared_keys_are_split_by_customer() -> None:
    first, second = customers_in_lanes()
    log = run_writers([[order(1, first, "o-1"), order(2, second, "o-2"), order(3, first, "o-3")]])
    assert log[:2] == ["submit 1,3", "submit 2"]
    assert sorted(log[2:]) == ["end 1,3", "end 2", "start 1,3", "start 2"]
