"""Browser tests: Debian's Chromium driven by Playwright against a real `automation web` process.

Playwright's own browser download cannot work here, so the tests point it at
`/usr/bin/chromium` (`.ci/run` installs it). axe-core is vendored beside these
tests and run inside each page through the DevTools protocol, which the
page's Content-Security-Policy does not govern.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from tests.harness import BIN, cli

CHROMIUM = os.environ.get("AUTOMATION_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
EDITOR = ("editor@example.com", "editor-password-1")
VIEWER = ("viewer@example.com", "viewer-password-1")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True, "args": CHROMIUM_ARGS}


def wall_now() -> dt.datetime:
    """The instant the web process also lives in (it reads the wall clock), to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def zone_at_local_hour(now: dt.datetime, hour: int) -> str:
    """A fixed-offset IANA zone in which `now` falls in the local hour `hour`."""
    offset = (hour - now.hour + 12) % 24 - 12
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Web:
    url: str
    env: dict[str, str]


@pytest.fixture
def web(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Web]:
    """`automation web` on a loopback port over this test's database, with an editor and a viewer.

    The public URL stays the test environment's https one, so the cookies are `Secure`; Chromium
    keeps them for `http://localhost`, a secure context.
    """
    port = _free_port()
    url = f"http://localhost:{port}"
    extra = {"AUTOMATION_SESSION_SECRET": "browser-test-secret"}
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    full = {**env, **extra}
    for (email, password), role in ((EDITOR, "editor"), (VIEWER, "viewer")):
        done = cli("users", "add", email, "--role", role, "--password-stdin", stdin=password + "\n", env=full)
        assert done.returncode == 0, done.stderr
    proc = subprocess.Popen(
        [str(BIN), "web", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **full},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).json()["database"] == "ok":  # serving
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise AssertionError(f"web did not start: {proc.communicate()[0]}")
    yield Web(url, full)
    proc.terminate()
    out, _ = proc.communicate(timeout=60)
    assert "Traceback" not in out, out


def sign_in(page: Page, web: Web, who: tuple[str, str], path: str = "/app/") -> None:
    page.goto(web.url + path)
    page.get_by_label("Email").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2 A/AA violations on the page as it is now."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate("(src) => { (0, eval)(src); }", AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})"
    )
    return [{"id": v["id"], "nodes": [n["target"] for n in v["nodes"]][:5]} for v in result["violations"]]


def screenshot(page: Page, name: str, tmp_path: Path, readme: bool = False) -> Path:
    """A full-page PNG beside the test; the README's into docs/screenshots when UPDATE_SCREENSHOTS=1."""
    folder = SCREENSHOTS if readme and os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def csp_errors(messages: list[str]) -> list[str]:
    return [m for m in messages if re.search(r"Content[ -]Security[ -]Policy", m, re.I)]
