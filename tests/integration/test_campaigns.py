"""Manual campaigns end to end: dry run, confirmation, launch, relaunch, cancel, on PostgreSQL and Redis."""

from __future__ import annotations

import getpass
import json
import os
import pty
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from automation.campaigns import campaign as campaigns
from automation.config import Settings
from automation.core.filters import Filter
from automation.store.models import Campaign, Delivery, Enrollment
from tests.conftest import ROOT
from tests.harness import BIN, Flow, cli, identify, track, utc

LAUNCH = "2026-11-23T14:00:00Z"  # 15:00 in Paris, 23:00 in Tokyo


@pytest.fixture
def flow(settings: Settings) -> Iterator[Flow]:
    f = Flow(settings)
    f.ingest(
        [
            identify(
                "c1",
                email="ada@example.com",
                first_name="Ada",
                timezone="Europe/Paris",
                tier="gold",
                email_opt_in=True,
            ),
            identify(
                "c2",
                email="ben@example.com",
                first_name="Ben",
                timezone="Europe/Paris",
                tier="silver",
                email_opt_in=True,
            ),
            identify(
                "c3",
                email="chen@example.com",
                first_name="Chen",
                timezone="Asia/Tokyo",
                tier="gold",
                email_opt_in=True,
            ),
            identify(
                "c4",
                email="dara@example.com",
                first_name="Dara",
                timezone="Europe/Paris",
                tier="gold",
                email_opt_in=False,
            ),
            identify("c5", first_name="Eve", timezone="Europe/Paris", tier="gold", email_opt_in=True),
            track("c1", "order_placed", "2026-10-01T10:00:00Z", "o-1", total=20),
        ]
    )
    yield f
    f.close()


def _count(flow: Flow, model: type, **where: object) -> int:
    with flow.runtime.sessions() as s:
        stmt = select(func.count()).select_from(model)
        for key, value in where.items():
            stmt = stmt.where(getattr(model, key) == value)
        return int(s.scalar(stmt) or 0)


def test_dry_run_shows_audience_sample_and_message_and_sends_nothing(flow: Flow, env: dict[str, str]) -> None:
    result = cli(
        "campaign",
        "send",
        "seasonal_offer",
        "--where",
        "{trait: tier, eq: gold}",
        "--dry-run",
        "--now",
        LAUNCH,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The journey's audience (an email, opted in) AND the filter (gold): c1 and c3, not c4 (no consent) nor c5 (no email).
    assert "dry run: 2 customers would enter seasonal_offer; nothing sent" in out
    assert "c1  a***@example.com  Europe/Paris" in out and "c3  c***@example.com  Asia/Tokyo" in out
    assert "ada@example.com" not in out and "c4" not in out
    assert "Subject: Ada, our winter roasts are here" in out
    assert "As a gold member you get 20% off" in out
    assert _count(flow, Enrollment) == 0 and _count(flow, Campaign) == 0 and _count(flow, Delivery) == 0


def test_launch_enrolls_records_and_sends_at_once_respecting_quiet_hours(
    flow: Flow, env: dict[str, str], sendgrid
) -> None:
    result = cli("campaign", "send", "seasonal_offer", "--campaign-id", "winter-26", "--yes", "--now", LAUNCH)
    assert result.returncode == 0, result.stderr
    assert "audience: 3 customers" in result.stdout
    assert "campaign winter-26: enrolled 3 new, 3 in total" in result.stdout
    with flow.runtime.sessions() as s:
        campaign = s.get(Campaign, "winter-26")
        assert campaign is not None
        assert (campaign.journey_id, campaign.audience_size, campaign.status) == (
            "seasonal_offer",
            3,
            "launched",
        )
        assert campaign.launched_by == getpass.getuser()
        assert campaign.launched_at == utc(LAUNCH)
    assert "the scheduler's next tick turns them into messages" in result.stdout
    assert flow.deliveries() == []
    # The scheduler's tick at the launch instant: three deliveries due now, waiting on Redis.
    assert flow.tick(LAUNCH).deliveries == 3
    rows = flow.deliveries()
    assert {(d.customer_id, d.status, d.due_at) for d in rows} == {
        (c, "queued", utc(LAUNCH)) for c in ("c1", "c2", "c3")
    }
    assert {d.campaign_id for d in rows} == {"winter-26"}
    flow.drain()
    by_customer = {d.customer_id: d for d in flow.deliveries()}
    assert by_customer["c1"].status == by_customer["c2"].status == "sent"
    # 23:00 in Tokyo: deferred to 08:00 local, by the worker's own rules.
    assert by_customer["c3"].status == "deferred" and by_customer["c3"].due_at == utc("2026-11-23T23:00:00Z")
    assert sorted(m["to"] for m in sendgrid.messages()) == [
        "ada@example.com",
        "ben@example.com",
    ]


def test_relaunching_the_same_campaign_enrolls_nobody_twice(
    flow: Flow, env: dict[str, str], sendgrid
) -> None:
    first = cli(
        "campaign",
        "send",
        "seasonal_offer",
        "--where",
        "{trait: timezone, eq: Europe/Paris}",
        "--campaign-id",
        "w1",
        "--yes",
        "--now",
        LAUNCH,
    )
    assert first.returncode == 0, first.stderr
    flow.run(LAUNCH)
    # More customers arrive, then the same campaign is launched again, later.
    flow.ingest([identify("c6", email="fay@example.com", timezone="Europe/Paris", email_opt_in=True)])
    again = cli(
        "campaign",
        "send",
        "seasonal_offer",
        "--where",
        "{trait: timezone, eq: Europe/Paris}",
        "--campaign-id",
        "w1",
        "--yes",
        "--now",
        "2026-11-23T15:00:00Z",
    )
    assert again.returncode == 0, again.stderr
    assert "enrolled 1 new, 3 in total (relaunch" in again.stdout
    flow.run("2026-11-23T15:00:00Z")
    assert sorted(d.customer_id for d in flow.deliveries()) == ["c1", "c2", "c6"]
    assert len(sendgrid.messages()) == 3
    with flow.runtime.sessions() as s:
        assert s.get(Campaign, "w1").audience_size == 3  # type: ignore[union-attr]
    # A journey whose templates need its trigger's variables cannot be sent as a campaign.
    other = cli("campaign", "send", "post_purchase_thanks", "--campaign-id", "w2", "--yes", "--now", LAUNCH)
    assert other.returncode == 1
    assert other.stderr.strip() == (
        "error: journey 'post_purchase_thanks' cannot be sent as a campaign: its templates read event, "
        "which only its own trigger provides"
    )


def test_cancel_stops_what_was_not_sent(flow: Flow, sendgrid) -> None:
    result = campaigns.launch(
        flow.runtime.sessions,
        flow.runtime.catalog,
        "seasonal_offer",
        now=utc(LAUNCH),
        launched_by="svc",
        campaign_id="x1",
    )
    assert (result.enrolled, result.audience_size, result.resumed) == (3, 3, False)
    assert flow.tick(LAUNCH).deliveries == 3  # queued and on Redis, not yet delivered

    cancelled = cli("campaign", "cancel", "x1", "--now", "2026-11-23T14:01:00Z")
    assert cancelled.returncode == 0, cancelled.stderr
    assert "campaign x1 cancelled: 3 enrollments stopped, 3 pending messages skipped" in cancelled.stdout
    flow.drain()  # the messages already on Redis are dropped by the worker
    assert sendgrid.accepted == []
    assert {(d.status, d.reason) for d in flow.deliveries()} == {("skipped", "cancelled")}
    assert _count(flow, Enrollment, state="cancelled") == 3
    # A cancelled campaign cannot be relaunched under its id; an unknown one is one line.
    with pytest.raises(campaigns.CampaignError, match="was cancelled"):
        campaigns.launch(
            flow.runtime.sessions,
            flow.runtime.catalog,
            "seasonal_offer",
            now=utc(LAUNCH),
            launched_by="svc",
            campaign_id="x1",
        )
    missing = cli("campaign", "cancel", "nope")
    assert (missing.returncode, missing.stderr.strip()) == (1, "error: no campaign 'nope'")


def test_customers_file_and_rate_spread_the_first_messages(flow: Flow, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("c3\nc1\nc4\nunknown\n\nc2\n", encoding="utf-8")
    result = campaigns.launch(
        flow.runtime.sessions,
        flow.runtime.catalog,
        "seasonal_offer",
        now=utc(LAUNCH),
        launched_by="svc",
        customer_ids=ids,
        where=Filter.model_validate({"trait": "tier", "eq": "gold"}),
        rate_per_s=0.5,
        chunk=2,
    )
    assert result.audience_size == 2  # c1 and c3: listed, gold, and in the journey's audience
    with flow.runtime.sessions() as s:
        rows = s.execute(
            select(Enrollment.customer_id, Enrollment.next_at).order_by(Enrollment.next_at)
        ).all()
    assert rows == [("c1", utc(LAUNCH)), ("c3", utc("2026-11-23T14:00:02Z"))]  # ordered by id within a chunk
    assert flow.tick(LAUNCH).deliveries == 1  # the second is not due yet
    assert flow.tick("2026-11-23T14:00:02Z").deliveries == 1


def test_confirmation_refused_without_a_terminal(flow: Flow, env: dict[str, str]) -> None:
    result = cli("campaign", "send", "seasonal_offer", "--now", LAUNCH, stdin="y\n")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: refusing to enroll 3 customers without --yes: stdin is not a terminal to confirm on"
    )
    assert _count(flow, Enrollment) == 0 and _count(flow, Campaign) == 0


def _on_a_terminal(answer: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command with a pseudo-terminal as stdin and type `answer`."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(BIN), *args],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    os.close(slave)
    os.write(master, answer.encode())
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(master)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_confirmation_on_a_terminal_no_then_yes(flow: Flow, env: dict[str, str]) -> None:
    no = _on_a_terminal("n\n", "campaign", "send", "seasonal_offer", "--campaign-id", "t1", "--now", LAUNCH)
    assert no.returncode == 1
    assert "Enroll 3 customers into seasonal_offer as campaign t1? [y/N]" in no.stdout
    assert "not launched; nothing sent" in no.stderr
    assert _count(flow, Enrollment) == 0 and _count(flow, Campaign) == 0

    yes = _on_a_terminal("y\n", "campaign", "send", "seasonal_offer", "--campaign-id", "t1", "--now", LAUNCH)
    assert yes.returncode == 0, yes.stderr
    assert "campaign t1: enrolled 3 new, 3 in total" in yes.stdout
    assert "enrolled 3/3 (100%)" in yes.stderr  # plain progress lines when stdout is not a terminal
    assert _count(flow, Enrollment, campaign_id="t1") == 3


def test_bad_filter_is_one_line_with_its_position(flow: Flow, env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "segment.yaml"
    bad.write_text("all:\n  - {trait: tier, eq: gold}\n  - {trait: tier, equals: gold}\n", encoding="utf-8")
    result = cli("campaign", "send", "seasonal_offer", "--where", str(bad), "--dry-run")
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"error: {bad}:3:")
    assert "equals" in result.stderr and "Traceback" not in result.stderr
    yaml_error = cli("campaign", "send", "seasonal_offer", "--where", "{trait: [", "--dry-run")
    assert yaml_error.returncode == 1 and yaml_error.stderr.startswith("error: --where:1:")
    unknown = cli("campaign", "send", "nope", "--yes")
    assert unknown.returncode == 1 and "unknown journey 'nope'" in unknown.stderr


def test_embedded_launch_delivers_in_process_to_the_outbox(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'local.db'}",
        "REDIS_URL": "",
        "SENDGRID_API_KEY": "",
        "AUTOMATION_EMAIL_PROVIDER": "outbox",
        "AUTOMATION_OUTBOX_DIR": str(tmp_path / "outbox"),
        "AUTOMATION_JOURNEYS_DIR": str(ROOT / "journeys"),
        "AUTOMATION_TEMPLATES_DIR": str(ROOT / "templates"),
    }
    people = tmp_path / "people.jsonl"
    people.write_text(
        "\n".join(
            json.dumps(
                identify(
                    f"p{n}",
                    email=f"p{n}@example.com",
                    first_name=f"P{n}",
                    timezone="Europe/Paris",
                    email_opt_in=True,
                )
            )
            for n in range(3)
        ),
        encoding="utf-8",
    )
    assert cli("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    assert cli("ingest", str(people), env=env, cwd=tmp_path).returncode == 0
    result = cli("campaign", "send", "seasonal_offer", "--yes", "--now", LAUNCH, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "delivered in-process (no REDIS_URL set)" in result.stdout
    emails = sorted((tmp_path / "outbox" / "email").glob("*.eml"))
    assert len(emails) == 3
    assert "our winter roasts are here" in emails[0].read_text(encoding="utf-8")
