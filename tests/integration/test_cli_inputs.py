"""CLI gaps: each bad input or unreachable service is one clear line and an exit, never a hang."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.harness import cli

ROOT = Path(__file__).resolve().parents[2]
DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def _one_line(run_stderr: str) -> str:
    lines = run_stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run_stderr and "unexpected" not in run_stderr, run_stderr
    return lines[0]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"AUTOMATION_TICK_INTERVAL_S": "-1"}, "error: invalid setting AUTOMATION_TICK_INTERVAL_S: "),
        (
            {"DATABASE_URL": "postgresql://u@127.0.0.1:abc/x"},
            "error: invalid setting DATABASE_URL: has a port",
        ),
        ({"REDIS_URL": "notredis://x"}, "error: invalid setting REDIS_URL: must start with redis://"),
        ({"AUTOMATION_LOG_LEVEL": "NOPE"}, "error: invalid setting AUTOMATION_LOG_LEVEL: 'NOPE'"),
    ],
)
def test_bad_settings_stop_the_scheduler_with_one_line(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    run = cli("scheduler", env={"DATABASE_URL": "", **env}, cwd=tmp_path, timeout=30)
    assert run.returncode == 1
    assert _one_line(run.stderr).startswith(expected)


@pytest.mark.parametrize("command", [["scheduler"], ["tick"], ["worker", "--burst"]])
def test_redis_down_is_one_line_at_start(tmp_path: Path, command: list[str]) -> None:
    env = {
        "DATABASE_URL": "",
        "REDIS_URL": DOWN,
        "AUTOMATION_JOURNEYS_DIR": str(ROOT / "journeys"),
        "AUTOMATION_TEMPLATES_DIR": str(ROOT / "templates"),
    }
    run = cli(*command, env=env, cwd=tmp_path, timeout=30)
    assert run.returncode == 1
    assert _one_line(run.stderr).startswith("error: cannot reach Redis at 127.0.0.1:1 (REDIS_URL): ")


def test_web_port_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    run = cli("web", "--port", "70000", env={"DATABASE_URL": ""}, cwd=tmp_path, timeout=30)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr and "Invalid value for '--port'" in run.stderr


def test_a_fifo_among_journeys_and_a_broken_template_are_reported_not_waited_on(tmp_path: Path) -> None:
    journeys, templates = tmp_path / "journeys", tmp_path / "templates"
    shutil.copytree(ROOT / "journeys", journeys)
    shutil.copytree(ROOT / "templates", templates)
    os.mkfifo(journeys / "stuck.yaml")
    (templates / "winback" / "subject.txt").write_bytes(b"We miss you \xff")
    run = cli("journeys", "validate", str(journeys), "--templates", str(templates), cwd=tmp_path, timeout=30)
    assert run.returncode == 1
    problems = run.stderr.strip().splitlines()
    assert f"{journeys / 'stuck.yaml'}:1:1: not a regular file" in problems
    assert any(p.startswith(f"{templates / 'winback' / 'subject.txt'}:1:1: not UTF-8 text") for p in problems)
    assert "Traceback" not in run.stderr
