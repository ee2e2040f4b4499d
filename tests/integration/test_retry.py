"""`automation deliveries retry`: re-sending what failed or was skipped once its cause is fixed.

Real processes (`automation tick`, `automation worker --burst`) on PostgreSQL and
Redis, the real SendGrid SDK against the stand-in.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import ROOT
from tests.harness import cli, identify
from tests.standins import Reply, SendGridStandIn

NOW = "2026-11-22T12:00:00Z"
LATER = "2026-11-22T13:00:00Z"
PEOPLE = ("c1", "c2", "c3")


def run(*args: str, env: dict[str, str], ok: bool = True) -> str:
    result = cli(*args, env=env)
    assert (result.returncode == 0) == ok, result.stdout + result.stderr
    return result.stdout + result.stderr


def ledger(sessions: sessionmaker[Session]) -> list[tuple[int, str, str, int | None, str | None]]:
    from automation.store.models import Delivery

    with sessions() as s:
        return [
            (d.id, d.customer_id, d.status, d.retry_of, d.reason)
            for d in s.scalars(select(Delivery).order_by(Delivery.id))
        ]


@pytest.fixture
def launched(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Three customers enrolled in the seasonal offer and ticked: three deliveries queued on Redis."""
    records = tmp_path / "people.jsonl"
    records.write_text(
        "".join(
            json.dumps(identify(c, "2026-01-01T00:00:00Z", email=f"{c}@example.com", email_opt_in=True))
            + "\n"
            for c in PEOPLE
        )
    )
    run("ingest", str(records), env=env)
    run("campaign", "send", "seasonal_offer", "--campaign-id", "w1", "--yes", "--now", NOW, env=env)
    run("tick", "--now", NOW, env=env)
    return env


def test_messages_skipped_for_a_missing_journey_are_sent_once_it_is_back(
    launched: dict[str, str], tmp_path: Path, sessions: sessionmaker[Session], sendgrid: SendGridStandIn
) -> None:
    env = launched
    without = tmp_path / "journeys-without-offer"
    shutil.copytree(ROOT / "journeys", without)
    (without / "seasonal_offer.yaml").unlink()
    # The journey is removed before the workers get to its messages: the scheduler records that catalog.
    run("tick", "--now", NOW, env={**env, "AUTOMATION_JOURNEYS_DIR": str(without)})
    run("worker", "--burst", env={**env, "AUTOMATION_JOURNEYS_DIR": str(without)})
    first = ledger(sessions)
    assert [(c, st) for _, c, st, _, _ in first] == [(c, "skipped") for c in PEOPLE]
    assert sendgrid.messages() == []

    # Retrying while the journey is still missing is refused: nothing is used up.
    refused = run(
        "deliveries",
        "retry",
        *(str(i) for i, *_ in first),
        env={**env, "AUTOMATION_JOURNEYS_DIR": str(without)},
        ok=False,
    )
    assert "has no send step 'offer' in the journeys folder; restore it first" in refused
    run("suppress", "add", "email", "c3@example.com", env=env)  # meanwhile c3 asked to hear nothing more

    selection = ("--journey", "seasonal_offer", "--status", "skipped", "--since", NOW)
    dry = run("deliveries", "retry", *selection, "--dry-run", "--now", LATER, env=env)
    assert "dry run: 3 deliveries would be retried; nothing sent" in dry
    assert ledger(sessions) == first

    done = run("deliveries", "retry", *selection, "--now", LATER, env=env)
    assert "retried 3 deliveries as new ones due at 2026-11-22T13:00:00+00:00" in done
    run("worker", "--burst", env=env)
    retries = ledger(sessions)[3:]
    assert [(c, st, of) for _, c, st, of, _ in retries] == [
        ("c1", "sent", first[0][0]),
        ("c2", "sent", first[1][0]),
        ("c3", "suppressed", first[2][0]),  # still judged by every rule
    ]
    assert sorted(m["to"] for m in sendgrid.messages()) == ["c1@example.com", "c2@example.com"]

    again = run("deliveries", "retry", *selection, "--now", LATER, env=env, ok=False)
    assert f"not retried: delivery {first[0][0]} was already retried as delivery {retries[0][0]}" in again
    run("tick", "--now", LATER, env=env)
    run("worker", "--burst", env=env)
    assert len(ledger(sessions)) == 6 and len(sendgrid.messages()) == 2


def test_a_failed_delivery_is_retried_by_id_and_a_sent_one_is_not(
    launched: dict[str, str], sessions: sessionmaker[Session], sendgrid: SendGridStandIn
) -> None:
    env = launched
    sendgrid.queue(Reply(400, {"errors": [{"message": "The from address does not match a verified Sender"}]}))
    run("worker", "--burst", env={**env, "AUTOMATION_EMAIL_BATCH_SIZE": "1"})
    rows = ledger(sessions)
    failed = [i for i, _, st, _, _ in rows if st == "failed"]
    sent = [i for i, _, st, _, _ in rows if st == "sent"]
    assert len(failed) == 1 and len(sent) == 2

    out = run("deliveries", "retry", str(failed[0]), str(sent[0]), "999999", "--now", LATER, env=env)
    assert f"not retried: delivery {sent[0]} is sent: only failed or skipped deliveries are retried" in out
    assert "not retried: no delivery 999999" in out
    assert "retried 1 deliveries" in out
    run("worker", "--burst", env=env)
    retried = [r for r in ledger(sessions) if r[3] == failed[0]]
    assert [st for _, _, st, _, _ in retried] == ["sent"]
    assert len(sendgrid.messages()) == 3


def test_retry_needs_ids_or_a_whole_selection(env: dict[str, str]) -> None:
    both = cli("deliveries", "retry", "1", "--journey", "seasonal_offer", env=env)
    assert both.returncode == 1 and "not both" in both.stderr
    partial = cli("deliveries", "retry", "--journey", "seasonal_offer", "--status", "failed", env=env)
    assert partial.returncode == 1 and "all of --journey, --status and --since" in partial.stderr
    sent = cli(
        "deliveries", "retry", "--journey", "seasonal_offer", "--status", "sent", "--since", NOW, env=env
    )
    assert sent.returncode == 1 and "unknown status to retry 'sent' (one of failed, skipped)" in sent.stderr
