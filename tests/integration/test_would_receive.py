"""Would they receive it? The dry run and explain judge sends with the worker's judging function.

On PostgreSQL and Redis, through the installed command: consent, suppression,
quiet hours and the frequency cap as of the launch instant.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness import cli, identify, track

EARLIER = "2026-11-22T11:00:00Z"
NOW = "2026-11-22T12:00:00Z"


def run(*args: str, env: dict[str, str]) -> str:
    result = cli(*args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_dry_run_counts_who_would_receive_at_launch_next_to_who_would_enter(
    env: dict[str, str], tmp_path: Path
) -> None:
    def person(cid: str, **traits: object) -> dict[str, object]:
        return identify(cid, "2026-01-01T00:00:00Z", email=f"{cid}@example.com", email_opt_in=True, **traits)

    records = [
        person("a1"),
        person("a2"),  # suppressed below
        person("a3", timezone="Asia/Tokyo"),  # 21:00 there: quiet hours
        person("a4"),  # already had a message an hour ago: the daily cap
        identify(
            "a5", "2026-01-01T00:00:00Z", email="a5@example.com", email_opt_in=False
        ),  # not in the audience
    ]
    data = tmp_path / "people.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    run("ingest", str(data), env=env)
    run("suppress", "add", "email", "a2@example.com", "--reason", "bounce", env=env)
    only_a4 = tmp_path / "a4.txt"
    only_a4.write_text("a4\n")
    run(
        "campaign",
        "send",
        "seasonal_offer",
        "--customers",
        str(only_a4),
        "--campaign-id",
        "first",
        "--yes",
        "--now",
        EARLIER,
        env=env,
    )
    run("tick", "--now", EARLIER, env=env)
    run("worker", "--burst", env=env)

    out = run("campaign", "send", "seasonal_offer", "--dry-run", "--now", NOW, env=env)
    assert "dry run: 4 customers would enter seasonal_offer; nothing sent" in out
    assert "at launch: 1 would receive the first message, 2 would get it later, 1 would not get it" in out
    assert "  later: " in out and "quiet hours 1" in out and "frequency cap 1" in out
    assert "  not sent: suppressed: address suppressed (bounce) 1" in out
    statuses = json.loads(run("deliveries", "list", "--json", env=env))["deliveries"]
    assert len(statuses) == 1  # the dry run made nothing


def test_explain_names_the_rule_that_would_stop_the_message(env: dict[str, str], tmp_path: Path) -> None:
    records = [
        identify("b1", "2026-01-01T00:00:00Z", email="b1@example.com", email_opt_in=False),
        track("b1", "order_placed", "2026-11-22T09:00:00Z", "o-b1", total=10, currency="EUR"),
        identify("b2", "2026-01-01T00:00:00Z", email="b2@example.com", email_opt_in=True),
        track("b2", "order_placed", "2026-11-22T09:00:00Z", "o-b2", total=10, currency="EUR"),
    ]
    data = tmp_path / "people.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    run("ingest", str(data), env=env)
    stopped = run("journeys", "explain", "post_purchase_thanks", "--customer", "b1", "--now", NOW, env=env)
    assert "would enter now" in stopped
    assert "step thanks if due now: would not be sent: skipped (consent: no email_opt_in)" in stopped
    fine = run("journeys", "explain", "post_purchase_thanks", "--customer", "b2", "--now", NOW, env=env)
    assert "step thanks if due now: would be sent" in fine
    late = run(
        "journeys",
        "explain",
        "post_purchase_thanks",
        "--customer",
        "b2",
        "--now",
        "2026-11-22T22:00:00Z",
        env=env,
    )
    assert "step thanks if due now: would wait (quiet hours) until 2026-11-23T08:00:00+00:00" in late
