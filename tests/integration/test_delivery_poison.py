"""Done when: poisoned customers mixed into 2,000 deliveries on real worker processes.

Two `dramatiq automation.worker` processes deliver 2,000 messages (emails in
batches of up to 25 recipients, SMS one by one) through the real SDKs to the
stand-ins. One customer in five is poisoned: a `points` trait the template
cannot add to, a range the sandbox refuses, a name with CR/LF written before
ingest refused them. Every good delivery is sent exactly once, every poisoned
one ends `failed` with its reason, and nothing stays `queued` or in flight.
"""

from __future__ import annotations

import collections
import time
from typing import Any

import pytest
from sqlalchemy import func, select, update

from automation.store.models import Customer, Delivery
from tests import deliverykit as kit
from tests.deliverykit import kit_env, kit_settings, make_flow
from tests.harness import Flow
from tests.standins import SendGridStandIn, TwilioStandIn

__all__ = ["kit_env", "kit_settings", "make_flow"]

NOW = "2026-11-22T12:00:00Z"
EARLIER = "2026-11-22T11:00:00Z"
BATCH = 25
# slot of n % 20 -> (kind, journey event, points)
SLOTS: dict[int, tuple[str, str, Any]] = {
    **{n: ("email", "points", 5) for n in range(12)},
    **{n: ("sms", "points_text", 5) for n in range(12, 16)},
    16: ("lots", "points", "lots"),
    17: ("huge", "points", 10**9),
    18: ("sms_lots", "points_text", "lots"),
    19: ("crlf", "points", 5),
}
REASONS = {
    "lots": 'render: points_mail/body.html:1: TypeError: can only concatenate str (not "int") to str',
    "huge": "render: points_mail/body.html:1: OverflowError",
    "sms_lots": 'render: points_sms/sms.txt:1: TypeError: can only concatenate str (not "int") to str',
    "crlf": "compose: a control character in the recipient's address or name",
}


def in_flight(flow: Flow) -> int:
    with flow.runtime.sessions() as s:
        active = Delivery.status.in_(("queued", "claimed", "sending"))
        return int(s.scalar(select(func.count()).where(active)) or 0)


@pytest.mark.slow
def test_poisoned_customers_fail_alone_among_two_thousand_deliveries(
    make_flow: Any, kit_env: dict[str, str], sendgrid: SendGridStandIn, twilio: TwilioStandIn, tmp_path: Any
) -> None:
    flow: Flow = make_flow(email_batch_size=BATCH)
    kinds: dict[str, str] = {}
    records: list[dict[str, Any]] = []
    for n in range(2000):
        cid = f"p{n:04d}"
        kind, journey_event, points = SLOTS[n % 20]
        kinds[cid] = kind
        records += [kit.person(cid, points=points), kit.event(cid, journey_event, EARLIER)]
    assert not flow.ingest(records).rejected
    crlf = [cid for cid, kind in kinds.items() if kind == "crlf"]
    with flow.runtime.sessions.begin() as s:
        s.execute(
            update(Customer).where(Customer.id.in_(crlf)).values(first_name="Eve\r\nBcc: all@example.com")
        )
    assert flow.tick(NOW).enqueued == 2000

    env = {
        **kit_env,
        "AUTOMATION_EMAIL_BATCH_SIZE": str(BATCH),
        "AUTOMATION_EMAIL_RATE_PER_S": "10000",
        "AUTOMATION_SMS_RATE_PER_S": "10000",
    }
    started = time.monotonic()
    workers = [kit.start_worker(env, tmp_path / "a.log"), kit.start_worker(env, tmp_path / "b.log")]
    try:
        assert kit.wait_for(lambda: in_flight(flow) == 0, timeout=240), in_flight(flow)
    finally:
        codes = [kit.stop_worker(w) for w in workers]
    assert codes == [0, 0]
    elapsed = time.monotonic() - started

    rows = {d.customer_id: d for d in flow.deliveries()}
    assert len(rows) == 2000
    mail = collections.Counter(
        p["custom_args"]["delivery_id"] for m in sendgrid.accepted for p in m.body["personalizations"]
    )
    texts = collections.Counter(m.body["To"] for m in twilio.accepted)
    for cid, d in rows.items():
        kind = kinds[cid]
        copies = mail[str(d.id)] if d.channel == "email" else texts[d.address or ""]
        if kind in ("email", "sms"):
            assert (d.status, copies) == ("sent", 1), (cid, d.status, d.reason, copies)
        else:
            assert d.status == "failed" and copies == 0, (cid, d.status, copies)
            assert (d.reason or "").startswith(REASONS[kind]), (cid, d.reason)
    final = collections.Counter(d.status for d in rows.values())
    assert final == {"sent": 1600, "failed": 400}
    assert sum(mail.values()) == 1200 and sum(texts.values()) == 400
    for log in ("a.log", "b.log"):
        text = (tmp_path / log).read_text()
        assert "Traceback" not in text and "@example.com" not in text
    print(f"\n2,000 deliveries with 400 poisoned customers in {elapsed:.0f} s: {dict(final)}")
