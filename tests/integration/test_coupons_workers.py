"""Done when: two `dramatiq automation.worker` processes share a pool smaller than the audience.

Every code goes to at most one delivery and into that delivery's email only;
the deliveries left without one fail with the empty-pool reason.
"""

from __future__ import annotations

import collections
import re
from pathlib import Path

from sqlalchemy import select

from automation.config import Settings
from automation.loyalty import coupons
from automation.store.models import Coupon
from tests.deliverykit import event, kit_env, kit_settings, person, start_worker, stop_worker, wait_for
from tests.harness import Flow, utc
from tests.standins import SendGridStandIn

__all__ = ["kit_env", "kit_settings"]

T0 = "2026-11-22T12:00:00Z"
AUDIENCE = 40
POOL = 15


def test_two_worker_processes_never_give_one_code_twice_and_the_rest_fail_as_empty(
    kit_env: dict[str, str], kit_settings: Settings, sendgrid: SendGridStandIn, tmp_path: Path
) -> None:
    flow = Flow(kit_settings.model_copy(update={"email_batch_size": 1}))
    env = {**kit_env, "AUTOMATION_EMAIL_BATCH_SIZE": "1", "AUTOMATION_EMAIL_RATE_PER_S": "10000"}
    workers = []
    try:
        with flow.runtime.sessions.begin() as s:
            coupons.generate(s, "welcome", "W-####-??", POOL, utc(T0))
        names = [f"p{n:02d}" for n in range(AUDIENCE)]
        flow.ingest([person(n) for n in names] + [event(n, "offer", T0) for n in names])
        assert flow.tick(T0).enqueued == AUDIENCE
        workers = [start_worker(env, tmp_path / f"worker-{n}.log", threads=4) for n in "ab"]

        def settled() -> bool:
            return all(d.status in ("sent", "failed") for d in flow.deliveries()) and bool(flow.deliveries())

        assert wait_for(settled, timeout=120)
    finally:
        for w in workers:
            stop_worker(w)
        flow.close()
    outcome = collections.Counter((d.status, d.reason) for d in flow.deliveries())
    assert outcome == {("sent", None): POOL, ("failed", "coupon pool welcome is empty"): AUDIENCE - POOL}
    with flow.runtime.sessions() as s:
        holders = {c: d for c, d in s.execute(select(Coupon.code, Coupon.delivery_id))}
    sent = {d.id: d.customer_id for d in flow.deliveries(status="sent")}
    assert sorted(d for d in holders.values() if d is not None) == sorted(sent)
    mailed = [re.search(r"Your code: (\S+)", m["text"]) for m in sendgrid.messages()]
    codes = [m.group(1) for m in mailed if m]
    assert len(codes) == POOL and len(set(codes)) == POOL and set(codes) == set(holders)
    by_person = {m["to"]: m["text"] for m in sendgrid.messages()}
    for code, did in holders.items():
        assert f"Your code: {code}" in by_person[f"{sent[did]}@example.com"]
