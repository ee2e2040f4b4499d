"""Workers log one line per outcome: delivery id, journey, step, status and reason; no address or name."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from automation.store.models import Delivery
from tests.harness import cli, identify, track


def test_a_burst_worker_logs_each_outcome_without_personal_data(
    env: dict[str, str], tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    people = {"sent": True, "unasked": False, "gone": True}
    records = []
    for cid, opted_in in people.items():
        records.append(
            identify(
                cid,
                "2026-01-01T00:00:00Z",
                email=f"{cid}@example.com",
                first_name=f"Name{cid}",
                email_opt_in=opted_in,
            )
        )
        records.append(
            track(cid, "order_placed", "2026-11-22T09:00:00Z", f"o-{cid}", total=5, currency="EUR")
        )
    data = tmp_path / "records.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert cli("ingest", str(data), env=env).returncode == 0
    assert cli("suppress", "add", "email", "gone@example.com", env=env).returncode == 0
    assert cli("tick", "--now", "2026-11-22T12:00:00Z", env=env).returncode == 0
    burst = cli("worker", "--burst", env={**env, "AUTOMATION_EMAIL_BATCH_SIZE": "1"})
    assert burst.returncode == 0, burst.stderr
    with sessions() as s:
        ids = {d.customer_id: d.id for d in s.scalars(select(Delivery))}
    lines = [line for line in burst.stderr.splitlines() if "automation.deliver: delivery " in line]
    outcomes = {
        int(m["id"]): (m["journey"], m["step"], m["status"], m["reason"])
        for m in (
            re.search(
                r"delivery (?P<id>\d+) journey=(?P<journey>\S+) step=(?P<step>\S+) "
                r"status=(?P<status>\S+) reason=(?P<reason>.*)$",
                line,
            )
            for line in lines
        )
        if m
    }
    assert len(lines) == 3
    assert outcomes == {
        ids["sent"]: ("post_purchase_thanks", "thanks", "sent", "None"),
        ids["unasked"]: ("post_purchase_thanks", "thanks", "skipped", "consent: no email_opt_in"),
        ids["gone"]: ("post_purchase_thanks", "thanks", "suppressed", "address suppressed (manual)"),
    }
    assert "@example.com" not in burst.stderr and "Name" not in burst.stderr
