"""The import contract of `automation/core/`: pure modules, checked by reading their source.

Every module under core/ is parsed; its imports and calls are refused when they
reach the database (sqlalchemy, `automation.store`), a provider (`automation.providers`,
the SendGrid and Twilio SDKs), the broker (Dramatiq, Redis), the network (httpx,
requests, urllib, socket, http.client), a file (`open()`, `Path.read_*`/`write_*`)
or the clock (`datetime.now`, `utcnow`, `today`, `time.time`, `time.monotonic`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "automation" / "core"

FORBIDDEN_IMPORTS = (
    "sqlalchemy",
    "automation.store",
    "automation.providers",
    "automation.deliver",
    "automation.processes",
    "automation.web",
    "sendgrid",
    "python_http_client",
    "twilio",
    "dramatiq",
    "redis",
    "httpx",
    "requests",
    "urllib",
    "socket",
    "http.client",
    "aiohttp",
    "time",
)
CLOCK = {
    "datetime.datetime.now",
    "datetime.datetime.utcnow",
    "datetime.datetime.today",
    "datetime.date.today",
    "time.time",
    "time.time_ns",
    "time.monotonic",
    "time.perf_counter",
}
FILE_CALLS = {"open", "io.open", "os.open"}
FILE_METHODS = {"read_text", "read_bytes", "write_text", "write_bytes", "open", "iterdir", "glob"}


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted origin, from the module's imports."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([aliases.get(node.id, node.id), *reversed(parts)])


def violations(source: str) -> list[str]:
    """Every forbidden import and call in one module's source, as `LINE: what`."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        found += [
            f"{node.lineno}: imports {m}"
            for m in modules
            if any(m == f or m.startswith(f + ".") for f in FORBIDDEN_IMPORTS)
        ]
        if isinstance(node, ast.Call):
            name = _dotted(node.func, aliases)
            if name in CLOCK:
                found.append(f"{node.lineno}: reads the clock ({name})")
            elif name in FILE_CALLS:
                found.append(f"{node.lineno}: opens a file ({name})")
            elif isinstance(node.func, ast.Attribute) and node.func.attr in FILE_METHODS:
                found.append(f"{node.lineno}: touches a file (.{node.func.attr})")
    return found


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: p.stem)
def test_every_core_module_is_pure(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import sqlalchemy\n", "1: imports sqlalchemy"),
        ("from sqlalchemy.orm import Session\n", "1: imports sqlalchemy.orm"),
        ("from automation.store.models import Customer\n", "1: imports automation.store.models"),
        ("from automation.providers.base import EmailBatch\n", "1: imports automation.providers.base"),
        ("import sendgrid\n", "1: imports sendgrid"),
        ("from twilio.rest import Client\n", "1: imports twilio.rest"),
        ("import dramatiq\n", "1: imports dramatiq"),
        ("import httpx\n", "1: imports httpx"),
        ("from urllib.request import urlopen\n", "1: imports urllib.request"),
        ("import socket\n", "1: imports socket"),
        ("import time\n", "1: imports time"),
        ("x = open('f')\n", "1: opens a file (open)"),
        ("from pathlib import Path\nx = Path('f').read_text()\n", "2: touches a file (.read_text)"),
        (
            "import datetime as dt\nx = dt.datetime.now(dt.UTC)\n",
            "2: reads the clock (datetime.datetime.now)",
        ),
        (
            "from datetime import datetime\nx = datetime.utcnow()\n",
            "2: reads the clock (datetime.datetime.utcnow)",
        ),
        ("import datetime\nx = datetime.date.today()\n", "2: reads the clock (datetime.date.today)"),
    ],
)
def test_the_contract_refuses_each_kind_of_io(source: str, expected: str) -> None:
    assert expected in violations(source)


def test_the_contract_allows_pure_code() -> None:
    source = "import datetime as dt\nfrom automation.core import entry\nx = dt.datetime(2026, 1, 1) + dt.timedelta(1)\n"
    assert violations(source) == []
