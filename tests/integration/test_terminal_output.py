"""Customer data printed by the CLI is text, never Rich markup, and never a terminal command."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness import cli, identify

ODD_ID = "[/x][bold]c1"
#: Escape sequences a hostile record could carry in a custom trait: clear screen, retitle, bidi override.
ESCAPES = "\x1b[2J\x1b]0;pwned\x07\u202egnp.exe"


def _ingest(env: dict[str, str], tmp_path: Path) -> None:
    person = identify(
        ODD_ID,
        "2026-01-01T00:00:00Z",
        email="ada@example.com",
        first_name="Ada",
        email_opt_in=True,
        city=ESCAPES,
        motto=":smile: [red]loud[/red]",
    )
    data = tmp_path / "people.jsonl"
    data.write_text(json.dumps(person) + "\n")
    assert cli("ingest", str(data), env=env).returncode == 0


def test_customers_show_prints_markup_as_text_and_strips_escapes(env: dict[str, str], tmp_path: Path) -> None:
    _ingest(env, tmp_path)
    run = cli("customers", "show", ODD_ID, env=env)
    assert run.returncode == 0, run.stderr
    assert f"Customer {ODD_ID}" in run.stdout
    assert ":smile: [red]loud[/red]" in run.stdout
    assert "gnp.exe" in run.stdout
    for char in ("\x1b", "\x07", "\u202e"):
        assert char not in run.stdout


def test_the_dry_run_sample_prints_an_odd_id_as_written(env: dict[str, str], tmp_path: Path) -> None:
    _ingest(env, tmp_path)
    run = cli("campaign", "send", "seasonal_offer", "--dry-run", "--now", "2026-11-02T10:00:00Z", env=env)
    assert run.returncode == 0, run.stderr
    assert f"{ODD_ID}  a***@example.com" in run.stdout
    assert "Traceback" not in run.stderr and "\x1b" not in run.stdout
