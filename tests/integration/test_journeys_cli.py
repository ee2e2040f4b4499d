"""`automation journeys validate|schema|explain|preview`, and processes refusing an invalid folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from automation.definitions.loader import SIDE_FILES
from tests.harness import cli, identify, track

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-03-02T10:00:00Z"


def ingest(env: dict[str, str], tmp_path: Path, records: list[dict]) -> None:
    data = tmp_path / "records.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = cli("ingest", str(data), env=env)
    assert result.returncode == 0, result.stderr


def person(cid: str, **traits: object) -> dict:
    base: dict[str, object] = {"email": f"{cid}@example.com", "first_name": cid.title(), "email_opt_in": True}
    return identify(cid, "2020-01-01T00:00:00Z", **{**base, **traits})


def test_validate_the_shipped_folder_and_print_the_schema(env: dict[str, str]) -> None:
    ok = cli("journeys", "validate", env=env)
    assert ok.returncode == 0, ok.stderr
    # Robust to journeys others ship: the count matches the folder and each shipped one is named.
    shipped = sorted(p.stem for p in (ROOT / "journeys").glob("*.yaml") if p.name not in SIDE_FILES)
    assert f"{len(shipped)} journeys valid: {', '.join(shipped)}" in ok.stdout
    assert {"post_purchase_thanks", "welcome_series"} <= set(shipped)
    schema = cli("journeys", "schema", env=env)
    assert schema.returncode == 0
    assert schema.stdout == (ROOT / "journeys" / "journey.schema.json").read_text()


def test_validate_reports_every_problem_as_file_line_column(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "one.yaml").write_text(
        "id: one\nname: One\ntrigger:\n  evnt: {name: order_placed}\nsteps:\n  - wait: {duration: soon}\n"
    )
    (folder / "two.yaml").write_text(
        "id: two\nname: Two\ntrigger: {inactivity: {event: order_placed, days: 60}}\n"
        "steps:\n  - send: {channel: email, template: post_purchase_thanks}\n"
        "  - send: {channel: sms, template: no_such}\n"
    )
    (folder / "tiers.yaml").write_text("order: [bronze, silver, gold]\n")  # the file loyalty.yaml replaced
    result = cli("journeys", "validate", str(folder), env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == f"{len(lines) - 1} problem(s)"
    assert all(re.match(r"^\S+:\d+:\d+: ", line) for line in lines[:-1]), lines
    text = result.stderr
    assert f"{folder}/one.yaml:4:3: unknown key 'evnt' (did you mean 'event'?)" in text
    assert f"{folder}/one.yaml:6:22: steps.0.wait.duration: bad duration 'soon'" in text
    assert "post_purchase_thanks/body.txt:3:31: uses 'event', which this journey cannot provide" in text
    assert f"{folder}/two.yaml:6:36: unknown template 'no_such'" in text
    assert f"{folder}/tiers.yaml:1:1: tiers.yaml is replaced by loyalty.yaml: list the tiers" in text
    assert "order" not in text.split("tiers.yaml:1:1:")[1].splitlines()[0]
    assert "Traceback" not in text


@pytest.mark.parametrize("command", [("scheduler",), ("worker", "--burst"), ("tick",)])
def test_processes_refuse_to_start_on_an_invalid_folder(
    env: dict[str, str], tmp_path: Path, command: tuple[str, ...]
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "one.yaml").write_text(
        "id: one\nname: One\ntrigger: {event: {name: x}}\nsteps:\n  - wait: {dayz: 1}\n"
    )
    result = cli(*command, env={**env, "AUTOMATION_JOURNEYS_DIR": str(folder)}, timeout=60)
    assert result.returncode == 1
    assert f"{folder}/one.yaml:5:12: unknown key 'dayz' (did you mean 'days'?)" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_explain_names_the_condition_that_keeps_a_customer_out(env: dict[str, str], tmp_path: Path) -> None:
    ingest(
        env,
        tmp_path,
        [
            person("never"),
            person("recent"),
            person("stale"),
            person("due"),
            person("noemail", email=None, signed_up_at="2024-03-02T09:00:00Z"),
            track("recent", "order_placed", "2026-02-20T10:00:00Z", "o-1"),
            track("stale", "order_placed", "2025-12-01T10:00:00Z", "o-2"),
            track("due", "order_placed", "2026-01-01T10:00:00Z", "o-3"),
        ],
    )

    def explain(journey: str, cid: str) -> str:
        result = cli("journeys", "explain", journey, "--customer", cid, "--now", NOW, env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    never = explain("inactive_60d", "never")
    assert "never does not enter inactive_60d" in never
    assert "trigger not met: never had a 'order_placed' event" in never
    assert "60 days without one are reached at 2026-04-21T10:00:00+00:00" in explain("inactive_60d", "recent")
    assert "older than the look-back 3d" in explain("inactive_60d", "stale")
    assert "due enters inactive_60d" in explain("inactive_60d", "due")
    assert "audience: email exists True does not hold" in explain("membership_anniversary", "noemail")
    assert "trigger not met: the customer has no date in trait 'birthday'" in explain("birthday", "due")
    assert cli("tick", "--now", NOW, env=env).returncode == 0
    assert "already enrolled (once per occurrence)" in explain("inactive_60d", "due")
    missing = cli("journeys", "explain", "inactive_60d", "--customer", "ghost", "--now", NOW, env=env)
    assert (missing.returncode, missing.stderr.strip()) == (1, "error: no customer with id 'ghost'")
    unknown = cli("journeys", "explain", "nope", "--customer", "due", "--now", NOW, env=env)
    assert unknown.returncode == 1 and "unknown journey 'nope' (known: " in unknown.stderr
    assert ", birthday, inactive_60d, " in unknown.stderr


def test_explain_cool_down_and_a_failing_audience_part(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "journeys"
    folder.mkdir()
    (folder / "visit.yaml").write_text(
        "id: visit\nname: V\ntrigger: {event: {name: visit, lookback: 30d}}\nre_entry: {cooldown: 30d}\n"
        "audience: {all: [{trait: email, exists: true}, {any: [{trait: tier, eq: gold}, {fact: order_count, gte: 3}]}]}\n"
        "steps:\n  - send: {channel: email, template: post_purchase_thanks}\n"
    )
    env = {**env, "AUTOMATION_JOURNEYS_DIR": str(folder)}
    ingest(
        env,
        tmp_path,
        [
            person("gold", tier="gold"),
            person("plain", tier="bronze"),
            track("gold", "visit", "2026-03-01T09:00:00Z", "v-1"),
            track("plain", "visit", "2026-03-01T09:00:00Z", "v-2"),
        ],
    )
    plain = cli("journeys", "explain", "visit", "--customer", "plain", "--now", NOW, env=env).stdout
    assert "audience: any of (tier eq 'gold'; order_count gte 3) does not hold" in plain
    assert cli("tick", "--now", NOW, env=env).returncode == 0
    ingest(env, tmp_path, [track("gold", "visit", "2026-03-05T09:00:00Z", "v-3")])
    later = cli(
        "journeys", "explain", "visit", "--customer", "gold", "--now", "2026-03-05T10:00:00Z", env=env
    )
    assert (
        "cool-down: last entered at 2026-03-02T10:00:00+00:00; may enter again after 2026-04-01T10:00:00+00:00"
        in later.stdout
    )


def test_preview_renders_what_the_customer_would_get(env: dict[str, str], tmp_path: Path) -> None:
    ingest(
        env,
        tmp_path,
        [
            person(
                "ada",
                first_name="<b>Ada</b>",
                phone="+15550001111",
                birthday="1990-06-15",
                email_opt_in=False,
            ),
            track("ada", "order_placed", "2026-01-01T10:00:00Z", "o-1", total=42.5, currency="EUR"),
            person("bo"),
        ],
    )
    html = tmp_path / "thanks.html"
    thanks = cli(
        "journeys", "preview", "post_purchase_thanks", "--customer", "ada", "--html", str(html), env=env
    )
    assert thanks.returncode == 0, thanks.stderr
    assert "Subject: Thank you for your order, <b>Ada</b>" in thanks.stdout
    assert "Order total: 42.50 EUR" in thanks.stdout
    assert "note: if due now, it would not be sent: skipped (consent: no email_opt_in)" in thanks.stdout
    page = html.read_text()
    assert "Hi &lt;b&gt;Ada&lt;/b&gt;," in page and "/unsubscribe/PREVIEW" in page

    birthday = cli("journeys", "preview", "birthday", "--customer", "ada", "--now", NOW, env=env)
    assert "Subject: Happy birthday, <b>Ada</b>! A bag is on us" in birthday.stdout

    sms = cli(
        "journeys", "preview", "inactive_60d", "--customer", "ada", "--step", "3", "--now", NOW, env=env
    )
    assert sms.returncode == 0, sms.stderr
    assert "== step 3 (winback-sms): sms, template winback_sms" in sms.stdout
    assert "COMEBACK15" in sms.stdout and "(GSM-7, 1 segment(s))" in sms.stdout
    assert "note: if due now, it would not be sent: skipped (consent: no sms_opt_in)" in sms.stdout

    wait = cli("journeys", "preview", "inactive_60d", "--customer", "ada", "--step", "2", env=env)
    assert (wait.returncode, wait.stderr.strip()) == (
        1,
        "error: step 2 of 'inactive_60d' is a wait, not a send",
    )
    # Bo has no order, so the loyalty programme has given him no tier yet.
    nothing = cli("journeys", "preview", "tier_upgrade", "--customer", "bo", env=env)
    assert (
        nothing.returncode == 1
        and "nothing to preview" in nothing.stderr
        and "Traceback" not in nothing.stderr
    )


def test_preview_says_what_the_worker_would_decide_suppression_quiet_hours_and_caps(
    env: dict[str, str], tmp_path: Path
) -> None:
    ingest(
        env,
        tmp_path,
        [
            person("ada", timezone="Europe/Paris"),
            person("bob", timezone="Europe/Paris"),
            track("ada", "order_placed", "2026-03-02T08:00:00Z", "o-1", total=10, currency="EUR"),
            track("bob", "order_placed", "2026-03-02T08:00:00Z", "o-2", total=10, currency="EUR"),
        ],
    )
    assert cli("suppress", "add", "email", "ada@example.com", env=env).returncode == 0

    def notes(customer: str, now: str) -> list[str]:
        result = cli(
            "journeys", "preview", "post_purchase_thanks", "--customer", customer, "--now", now, env=env
        )
        assert result.returncode == 0, result.stderr
        return [line for line in result.stdout.splitlines() if line.startswith("note: ")]

    assert notes("ada", NOW) == [
        "note: if due now, it would not be sent: suppressed (address suppressed (manual))"
    ]
    assert notes("bob", NOW) == []  # 11:00 in Paris
    assert notes("bob", "2026-03-02T21:30:00Z") == [  # 22:30 in Paris
        "note: if due now, it would wait (quiet hours) until 2026-03-03T07:00:00+00:00"
    ]
    seasonal = cli("journeys", "preview", "seasonal_offer", "--customer", "bob", "--now", NOW, env=env)
    assert seasonal.returncode == 0 and "note: " not in seasonal.stdout, seasonal.stderr
    assert cli("tick", "--now", "2026-03-02T10:30:00Z", env={**env, "REDIS_URL": ""}).returncode == 0
    later = "2026-03-02T11:00:00Z"  # bob's thank-you went out: the daily email cap is reached
    capped = cli("journeys", "preview", "seasonal_offer", "--customer", "bob", "--now", later, env=env)
    [note] = [line for line in capped.stdout.splitlines() if line.startswith("note: ")]
    assert note.startswith("note: if due now, it would wait (frequency cap) until 2026-03-03T")


def test_the_dramatiq_worker_refuses_to_boot_on_an_invalid_folder(
    env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "one.yaml").write_text(
        "id: one\nname: One\ntrigger: {event: {name: x}}\nsteps:\n  - wait: {dayz: 1}\n"
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dramatiq"),
            "automation.worker",
            "--processes",
            "1",
            "--threads",
            "1",
        ],
        env={**os.environ, **env, "AUTOMATION_JOURNEYS_DIR": str(folder)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    # The same FILE:LINE:COL line as the CLI's processes print (issue 12), at the start of a line.
    assert f"\n{folder}/one.yaml:5:12: unknown key 'dayz' (did you mean 'days'?)" in result.stderr
