"""No log level prints a secret or an address: the HTTP clients are capped, a filter guards the rest."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from automation.processes import logs
from tests.harness import cli, identify, track
from tests.standins import SendGridStandIn

NOW = "2026-11-22T12:00:00Z"
EMAIL = "ada.lovelace@example.com"


def test_debug_logs_of_a_real_send_hold_no_key_and_no_address(
    env: dict[str, str], tmp_path: Path, sendgrid: SendGridStandIn
) -> None:
    data = tmp_path / "records.jsonl"
    person = identify("c1", "2026-01-01T00:00:00Z", email=EMAIL, first_name="Ada", email_opt_in=True)
    order = track("c1", "order_placed", "2026-11-22T09:00:00Z", "o-1", total=42.5)
    data.write_text(json.dumps(person) + "\n" + json.dumps(order) + "\n")
    debug = {**env, "AUTOMATION_LOG_LEVEL": "DEBUG"}
    runs = [
        cli("ingest", str(data), env=debug),
        cli("tick", "--now", NOW, env=debug),
        cli("worker", "--burst", env=debug),
    ]
    assert [r.returncode for r in runs] == [0, 0, 0], [r.stderr for r in runs]
    assert len(sendgrid.accepted) == 1  # the SDK really sent, at DEBUG
    logged = "".join(r.stderr + r.stdout for r in runs)
    assert " DEBUG " in logged  # the level took effect
    for secret in (env["SENDGRID_API_KEY"], "Bearer", "Authorization", EMAIL, env["TWILIO_AUTH_TOKEN"]):
        assert secret not in logged


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """A root handler of our own, as a process's logging set-up would leave one."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    capped = {name: logging.getLogger(name).level for name in logs.CAPPED}
    logs.guard()
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)
    for name, level in capped.items():
        logging.getLogger(name).setLevel(level)


def test_the_filter_redacts_any_logger_and_tracebacks(captured: io.StringIO) -> None:
    log = logging.getLogger("automation.anything")
    log.debug("sending to %s via %s", EMAIL, "+15551234567")
    log.info("headers {'Authorization': 'Bearer SG.abc.def'} and api_key=%s", "SG.live.key")
    try:
        raise ValueError(f"bad address {EMAIL}")
    except ValueError:
        log.exception("failed for To=%2B15557654321")
    logging.getLogger("python_http_client.client").debug("HEADERS: Authorization: Bearer SG.x.y")
    text = captured.getvalue()
    assert EMAIL not in text and "15551234567" not in text and "15557654321" not in text
    assert "SG." not in text and "Bearer SG" not in text
    assert "sending to <email> via <phone>" in text
    assert "ValueError: bad address <email>" in text
    assert "HEADERS" not in text  # the HTTP client's logger is capped at WARNING


@pytest.mark.parametrize("value", ["NOPE", "verbose", "10"])
def test_an_unknown_log_level_is_one_line_naming_the_setting(value: str, tmp_path: Path) -> None:
    run = cli("status", env={"AUTOMATION_LOG_LEVEL": value, "DATABASE_URL": ""}, cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"error: invalid setting AUTOMATION_LOG_LEVEL: {value!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    ]
