"""A safe first deployment: `automation init`, the production steps, and the refusals before sending.

Tried as a new user would, through the installed `automation` command on real
PostgreSQL (given as a `postgres://` URL, as hosting platforms set it), Redis
and the SendGrid SDK against the stand-in.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.deliverykit import DRAMATIQ
from tests.harness import BIN, cli, track
from tests.standins import SendGridStandIn

POSTAL = "Acme Goods Ltd, 1 High Street, Leeds LS1 1AA, UK"


def project_env(env: dict[str, str], **extra: str) -> dict[str, str]:
    """The test's services and provider, with the project's own folders left to its `.env`."""
    values = {
        k: v for k, v in env.items() if k not in ("AUTOMATION_JOURNEYS_DIR", "AUTOMATION_TEMPLATES_DIR")
    }
    url = make_url(env["DATABASE_URL"])
    values["DATABASE_URL"] = url.set(drivername="postgres").render_as_string(hide_password=False)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AUTOMATION_")},
        **values,
        "AUTOMATION_EMAIL_FROM_NAME": "Acme Goods",
        "AUTOMATION_SHOP_URL": "https://acme-goods.example",
        "AUTOMATION_POSTAL_ADDRESS": POSTAL,
        "AUTOMATION_CURRENCY": "GBP",
        **extra,
    }


def run(
    args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args], env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120
    )


def records(*lines: dict[str, Any]) -> str:
    return "".join(json.dumps(line) + "\n" for line in lines)


def test_a_fresh_project_sends_nothing_until_a_journey_is_enabled(
    env: dict[str, str], sendgrid: SendGridStandIn, tmp_path: Path
) -> None:
    made = run(["init", "shop"], os.environ.copy(), tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "shop"
    dotenv = (project / ".env").read_text()
    assert "AUTOMATION_POSTAL_ADDRESS" in dotenv and "AUTOMATION_PUBLIC_URL" in dotenv
    assert "enabled: false" in (project / "journeys" / "post_purchase_thanks.yaml").read_text()
    for path in (project / "templates").rglob("*.*"):
        text = path.read_text()
        assert "Northwind" not in text and "COMEBACK15" not in text and "BIRTHDAY-BREW" not in text, path

    user = project_env(env)
    for step in (["db", "upgrade"], ["journeys", "validate"]):
        result = run(step, user, project)
        assert result.returncode == 0, result.stderr
    customers = records(
        {
            "type": "identify",
            "customer_id": "c1",
            "timestamp": "2026-11-01T09:00:00Z",
            "traits": {
                "email": "ada@example.com",
                "first_name": "Ada",
                "email_opt_in": True,
                "birthday": "1990-11-22",
            },
        },
        track("c1", "order_placed", "2026-11-22T09:00:00Z", "o-1", total=42.5, order_id="A-1"),
    )
    assert run(["ingest", "-"], user, project, stdin=customers).returncode == 0
    for now in ("2026-11-22T12:00:00Z", "2026-11-23T12:00:00Z"):
        assert run(["tick", "--now", now], user, project).returncode == 0
    assert run(["worker", "--burst"], user, project).returncode == 0
    assert sendgrid.messages() == []

    journey = project / "journeys" / "post_purchase_thanks.yaml"
    journey.write_text(journey.read_text().replace("enabled: false", "enabled: true"))
    order = records(track("c1", "order_placed", "2026-11-24T09:00:00Z", "o-2", total=10, order_id="A-2"))
    assert run(["ingest", "-"], user, project, stdin=order).returncode == 0
    assert run(["tick", "--now", "2026-11-24T11:00:00Z"], user, project).returncode == 0
    burst = run(["worker", "--burst"], user, project)
    assert burst.returncode == 0, burst.stderr
    [mail] = sendgrid.messages()
    assert mail["to"] == "ada@example.com" and mail["subject"] == "Thank you for your order, Ada"
    assert "Order total: 10.00 GBP" in mail["text"] and "#A-2" in mail["text"]
    assert POSTAL in mail["text"] and POSTAL in mail["html"]
    assert "https://acme-goods.example" in mail["text"] and "Acme Goods" in mail["html"]


@pytest.mark.parametrize(
    ("setting", "value", "line"),
    [
        (
            "AUTOMATION_UNSUBSCRIBE_SECRET",
            "change-me-in-production",
            "error: AUTOMATION_UNSUBSCRIBE_SECRET is the default; set a random secret of 32+ characters",
        ),
        (
            "AUTOMATION_UNSUBSCRIBE_SECRET",
            "short-secret",
            "error: AUTOMATION_UNSUBSCRIBE_SECRET is 12 characters; use at least 32",
        ),
        (
            "AUTOMATION_PUBLIC_URL",
            "http://127.0.0.1:8000",
            "error: AUTOMATION_PUBLIC_URL is a local address (http://127.0.0.1:8000); set the public URL "
            "of the web process (unsubscribe links and Twilio callbacks use it)",
        ),
        (
            "AUTOMATION_POSTAL_ADDRESS",
            "",
            "error: AUTOMATION_POSTAL_ADDRESS is not set; commercial email must show a postal address",
        ),
    ],
)
def test_processes_that_send_refuse_unsafe_settings_with_one_line(
    env: dict[str, str], tmp_path: Path, setting: str, value: str, line: str
) -> None:
    unsafe = {**os.environ, **env, setting: value}
    for command in (
        [str(BIN), "scheduler"],
        [str(BIN), "web", "--port", "65001"],
        [str(DRAMATIQ), "automation.worker"],
    ):
        result = subprocess.run(
            command, env=unsafe, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert result.returncode != 0, command
        assert line in result.stderr.splitlines(), (command, result.stderr)
        assert "Traceback" not in result.stderr
        assert value == "" or value not in result.stderr.replace("http://127.0.0.1:8000", "")


def test_the_outbox_needs_none_of_it(env: dict[str, str], tmp_path: Path) -> None:
    outbox = {
        **env,
        "AUTOMATION_EMAIL_PROVIDER": "outbox",
        "AUTOMATION_SMS_PROVIDER": "outbox",
        "AUTOMATION_UNSUBSCRIBE_SECRET": "change-me-in-production",
        "AUTOMATION_PUBLIC_URL": "http://localhost:8000",
        "AUTOMATION_POSTAL_ADDRESS": "",
    }
    proc = subprocess.Popen(
        [str(BIN), "scheduler"],
        env={**os.environ, **outbox},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    proc.terminate()
    proc.communicate(timeout=60)
    assert "error" not in first.lower(), first


def test_a_missing_folder_names_its_absolute_path_and_setting(env: dict[str, str], tmp_path: Path) -> None:
    moved = {k: v for k, v in env.items() if k not in ("AUTOMATION_JOURNEYS_DIR",)}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli("tick", env={**moved, "AUTOMATION_JOURNEYS_DIR": "journeys"}, cwd=elsewhere)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: journeys folder not found: {elsewhere / 'journeys'} (set AUTOMATION_JOURNEYS_DIR)"
    )
