"""The command answers at once and says the same thing everywhere.

`automation --help` imports no database, broker, template or console library
(measured by what is imported, not by time); `--version` exists; every option
shows a metavar and no flag shows a `<bool>` type; the top-level table of
commands names every command with its own one-line help.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess

import pytest
import typer.main

from automation.cli.app import COMMANDS, app, module_of
from tests.harness import BIN, cli

HEAVY = (
    "sqlalchemy",
    "dramatiq",
    "alembic",
    "jinja2",
    "pydantic",
    "pydantic_settings",
    "rich",
    "babel",
    "starlette",
    "uvicorn",
    "sendgrid",
    "twilio",
    "psycopg",
    "redis",
    "ruamel",
    "apscheduler",
)


def imported_by(*args: str) -> set[str]:
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    result = subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return {m.group(1).split(".")[0] for m in re.finditer(r"^import time:.*\|\s*(\S+)$", result.stderr, re.M)}


@pytest.mark.parametrize("args", [("--help",), ("--version",)])
def test_help_and_version_import_nothing_heavy(args: tuple[str, ...]) -> None:
    modules = imported_by(*args)
    assert "automation" in modules
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))


def test_version() -> None:
    result = cli("--version")
    assert result.returncode == 0 and re.fullmatch(r"automation \d+\.\d+\.\d+\S*\n", result.stdout)


def _all_commands() -> dict[str, object]:
    for module in {module_of(name) for name in COMMANDS}:
        importlib.import_module(module)
    group = typer.main.get_command(app)
    return dict(group.commands)  # type: ignore[attr-defined]


def test_the_command_table_lists_every_command_with_its_own_help() -> None:
    commands = _all_commands()
    assert set(commands) == set(COMMANDS)
    for name, summary in COMMANDS.items():
        assert commands[name].get_short_help_str(200) == summary, name  # type: ignore[attr-defined]


def _leaves(name: str, command: object) -> list[str]:
    subs = getattr(command, "commands", None)
    if not subs:
        return [name]
    return [leaf for sub, c in subs.items() for leaf in _leaves(f"{name} {sub}", c)]


def test_every_option_shows_a_metavar_and_no_flag_a_type() -> None:
    for name, command in _all_commands().items():
        for path in _leaves(name, command):
            result = cli(*path.split(), "--help", env={"COLUMNS": "200"})
            assert result.returncode == 0, (path, result.stderr)
            assert "<bool>" not in result.stdout, path
            for line in result.stdout.splitlines():
                option = re.match(r"^  (--[a-z-]+)(?: ([^ ].*?))?  ", line)
                if option and option.group(2) is not None:
                    assert re.fullmatch(r"[A-Z][A-Z0-9_.]*", option.group(2)), (path, line)
            if "Arguments:" in result.stdout:
                arguments = result.stdout.split("Arguments:")[1].split("Options:")[0]
                for name in re.findall(r"^  (\S+) <", arguments, re.M):
                    assert re.fullmatch(r"[A-Z][A-Z_]*(\.\.\.)?", name), (path, name)
