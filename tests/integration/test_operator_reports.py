"""What an operator reads after a campaign: the provider's word per message, rates, campaign list.

A real campaign is launched, ticked and sent by the installed command through
the real SendGrid SDK to the stand-in; SendGrid's signed events (and one click
on the unsubscribe link) come back through the real web app; the reports are
read as a user would, as JSON and as tables at 80 columns through a pipe.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from automation.config import load_settings
from automation.core.tokens import unsubscribe_token
from automation.store.models import Delivery
from automation.web.app import create_app
from tests.harness import cli, identify, utc
from tests.webhooks import PUBLIC_URL, SendGridSigner, batch, sendgrid_event

NOW = "2026-11-22T12:00:00Z"
CAMPAIGN = "seasonal_offer-winter-2026-very-important-people"
PEOPLE = ("c1", "c2", "c3", "c4", "c5")


def run(*args: str, env: dict[str, str], **extra: str) -> Any:
    result = cli(*args, env={**env, **extra})
    assert result.returncode == 0, result.stderr
    return result


def as_json(*args: str, env: dict[str, str]) -> Any:
    return json.loads(run(*args, "--json", env=env).stdout)


@pytest.fixture
def sent(env: dict[str, str], tmp_path: Path, sessions: sessionmaker[Session]) -> dict[str, int]:
    """Five customers sent the seasonal offer as one campaign; their delivery ids by customer."""
    records = tmp_path / "people.jsonl"
    records.write_text(
        "".join(
            json.dumps(identify(c, "2026-01-01T00:00:00Z", email=f"{c}@example.com", email_opt_in=True))
            + "\n"
            for c in PEOPLE
        )
    )
    run("ingest", str(records), env=env)
    run("campaign", "send", "seasonal_offer", "--campaign-id", CAMPAIGN, "--yes", "--now", NOW, env=env)
    run("tick", "--now", NOW, env=env)
    run("worker", "--burst", env=env)
    with sessions() as s:
        rows = list(s.scalars(select(Delivery).order_by(Delivery.customer_id)))
    assert [d.status for d in rows] == ["sent"] * 5
    return {d.customer_id: d.id for d in rows}


def test_what_the_provider_said_shows_per_message_in_rates_and_per_campaign(
    env: dict[str, str],
    sent: dict[str, int],
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer = SendGridSigner()
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", signer.public_key)
    monkeypatch.setenv("AUTOMATION_PUBLIC_URL", PUBLIC_URL)
    settings = load_settings()
    at = utc(NOW) + dt.timedelta(minutes=5)
    ids = sent
    events = batch(
        sendgrid_event("delivered", "e1", at, ids["c1"]),
        sendgrid_event("open", "e2", at, ids["c1"]),
        sendgrid_event("click", "e3", at, ids["c1"]),
        sendgrid_event("bounce", "e4", at, ids["c2"], reason="550 no such user"),
        sendgrid_event("delivered", "e5", at, ids["c3"]),
        sendgrid_event("spamreport", "e6", at, ids["c3"]),
        sendgrid_event("delivered", "e7", at, ids["c4"]),
        sendgrid_event("unsubscribe", "e8", at, ids["c4"]),
        sendgrid_event("dropped", "e9", at, ids["c5"], reason="Invalid"),
    )
    with TestClient(create_app(settings, sessions, clock=lambda: at)) as client:
        answer = client.post("/webhooks/sendgrid", content=events, headers=signer.headers(events, at))
        assert answer.status_code == 200, answer.text

        listed = as_json("deliveries", "list", env=env)["deliveries"]
        said = {d["customer"]: d["provider_status"] for d in listed}
        assert said == {
            "c1": "clicked",
            "c2": "bounced",
            "c3": "complained",
            "c4": "unsubscribed",
            "c5": "dropped",
        }
        assert {d["status"] for d in listed} == {"sent"}
        complained = as_json("deliveries", "list", "--provider-status", "complained", env=env)["deliveries"]
        assert [d["id"] for d in complained] == [ids["c3"]]

        status = as_json("status", "--journey", "seasonal_offer", env=env)["journeys"]
        assert [j["journey_id"] for j in status] == ["seasonal_offer"]
        offer = status[0]
        assert offer["deliveries"]["sent"] == 5
        assert offer["feedback"] == {"delivered": 3, "bounced": 1, "complained": 1, "unsubscribed": 1}
        assert (offer["delivered_rate"], offer["bounced_rate"]) == (0.6, 0.2)
        assert (offer["complained_rate"], offer["unsubscribed_rate"]) == (0.2, 0.2)

        shown = as_json("customers", "show", "c3", env=env)
        assert [(m["id"], m["status"], m["provider_status"]) for m in shown["messages"]] == [
            (ids["c3"], "sent", "complained")
        ]

        campaigns = as_json("campaign", "list", env=env)["campaigns"]
        assert len(campaigns) == 1
        launched = campaigns[0]
        assert (launched["id"], launched["journey_id"], launched["launched_by"]) == (
            CAMPAIGN,
            "seasonal_offer",
            getpass.getuser(),
        )
        assert launched["launched_at"] == "2026-11-22T12:00:00+00:00"
        assert (launched["audience_size"], launched["status"]) == (5, "launched")
        assert launched["deliveries"]["sent"] == 5
        assert launched["feedback"]["delivered"] == 3
        assert (launched["opened"], launched["clicked"]) == (1, 1)

        # The footer's unsubscribe link counts as the message's unsubscribe too.
        token = unsubscribe_token(ids["c1"], settings.unsubscribe_secret.get_secret_value())
        assert client.post(f"/unsubscribe/{token}").status_code == 200
    clicked_then_left = as_json("deliveries", "list", "--customer", "c1", env=env)["deliveries"]
    assert clicked_then_left[0]["provider_status"] == "unsubscribed"


def test_reports_print_ids_and_dates_whole_at_80_columns_through_a_pipe(
    env: dict[str, str], sent: dict[str, int]
) -> None:
    narrow = {"COLUMNS": "80"}
    reports = [
        run("deliveries", "list", env=env, **narrow).stdout,
        run("status", env=env, **narrow).stdout,
        run("campaign", "list", env=env, **narrow).stdout,
        run("customers", "show", "c1", env=env, **narrow).stdout,
        run("suppress", "list", env=env, **narrow).stdout,
    ]
    for text in reports:
        assert "…" not in text
    deliveries, status, campaigns, customer, _ = reports
    assert deliveries.count("seasonal_offer") == 5 and deliveries.count("2026-11-22 12:00:00") == 5
    assert "membership_anniversary" in status and "post_purchase_thanks" in status
    assert CAMPAIGN in campaigns and "2026-11-22 12:00:00" in campaigns
    assert CAMPAIGN not in customer and "2026-11-22T12:00:00+00:00" in customer


def test_every_list_and_show_command_speaks_json(env: dict[str, str], sent: dict[str, int]) -> None:
    run("suppress", "add", "email", "Gone@Example.com", env=env)
    suppressed = as_json("suppress", "list", env=env)["suppressions"]
    assert [(s["channel"], s["address"], s["reason"]) for s in suppressed] == [
        ("email", "gone@example.com", "manual")
    ]
    valid = as_json("journeys", "validate", env=env)
    assert valid["valid"] is True and "seasonal_offer" in valid["journeys"] and valid["problems"] == []
    shown = as_json("customers", "show", "c2", env=env)
    assert shown["customer_id"] == "c2" and shown["traits"]["email"] == "c2@example.com"


def test_validate_json_lists_each_problem_with_its_position(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "one.yaml").write_text(
        "id: one\nname: One\ntrigger:\n  evnt: {name: order_placed}\nsteps: []\n"
    )
    result = cli("journeys", "validate", str(folder), "--json", env=env)
    assert result.returncode == 1
    payload = json.loads(result.stdout)
    assert payload["valid"] is False
    first = payload["problems"][0]
    assert (first["file"], first["line"], first["column"]) == (str(folder / "one.yaml"), 4, 3)
    assert first["message"].startswith("unknown key 'evnt' (did you mean 'event'?)")


@pytest.mark.parametrize(
    "command",
    [
        ("status", "--journey", "seasonal_ofer"),
        ("deliveries", "list", "--journey", "seasonal_ofer"),
        ("journeys", "explain", "seasonal_ofer", "--customer", "c1"),
        ("journeys", "preview", "seasonal_ofer", "--customer", "c1"),
        ("campaign", "send", "seasonal_ofer", "--dry-run"),
    ],
)
def test_an_unknown_journey_gets_a_did_you_mean(env: dict[str, str], command: tuple[str, ...]) -> None:
    result = cli(*command, env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: unknown journey 'seasonal_ofer' (did you mean 'seasonal_offer'?)"
