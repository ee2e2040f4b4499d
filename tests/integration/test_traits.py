"""Declared custom traits: load-time checks, defaults at send time, and the undeclared ones listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automation.config import Settings
from tests.deliverykit import KIT_TRAITS, event, kit_env, kit_settings, person
from tests.harness import Flow, cli
from tests.standins import SendGridStandIn

__all__ = ["kit_env", "kit_settings"]

TRAITS = """traits:
  - name: favourite_roast
    type: string
    default: house blend
    description: The roast picked at sign-up.
  - name: nickname
    type: string
"""


def roast_template(templates: Path, subject: str) -> None:
    folder = templates / "roast_mail"
    folder.mkdir()
    (folder / "subject.txt").write_text(subject, encoding="utf-8")
    (folder / "body.html").write_text("<p>{{ customer.favourite_roast }}</p>", encoding="utf-8")
    (folder / "body.txt").write_text(
        "{{ customer.favourite_roast }}\n{{ unsubscribe_url }}", encoding="utf-8"
    )


@pytest.fixture
def roast(kit_settings: Settings) -> Settings:
    (kit_settings.journeys_dir / "traits.yaml").write_text(TRAITS + KIT_TRAITS.removeprefix("traits:\n"))
    (kit_settings.journeys_dir / "roast.yaml").write_text(
        "id: roast\nname: roast\ntrigger: {event: {name: roast}}\n"
        "audience: {trait: favourite_roast, ne: decaf}\n"
        "steps:\n  - send: {id: mail, channel: email, template: roast_mail}\n",
        encoding="utf-8",
    )
    roast_template(kit_settings.templates_dir, "{{ customer.nickname }}Your {{ customer.favourite_roast }}")
    return kit_settings


def test_a_misspelt_trait_is_a_load_time_error_with_a_did_you_mean(
    roast: Settings, kit_env: dict[str, str]
) -> None:
    subject = roast.templates_dir / "roast_mail" / "subject.txt"
    subject.write_text("Hi {{ customer.frist_name }}, {{ customer.favourite_roast }}", encoding="utf-8")
    journey = roast.journeys_dir / "roast.yaml"
    journey.write_text(journey.read_text().replace("trait: favourite_roast", "trait: favorite_roast"))
    result = cli("journeys", "validate", env=kit_env)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(
        line.startswith(
            f"{subject}:1:16: customer.frist_name: unknown trait 'frist_name' (did you mean 'first_name'?)"
        )
        for line in lines
    ), lines
    assert (
        f"{journey}:4:19: unknown trait 'favorite_roast' (did you mean 'favourite_roast'?); "
        "declare custom traits in traits.yaml"
    ) in lines
    assert "Traceback" not in result.stderr


def test_a_bad_declaration_is_reported_at_its_line(roast: Settings, kit_env: dict[str, str]) -> None:
    path = roast.journeys_dir / "traits.yaml"
    path.write_text(TRAITS + "  - name: points\n    type: integer\n    default: lots\n    colour: red\n")
    result = cli("journeys", "validate", env=kit_env)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{path}:11:5: unknown key 'colour'")
    assert lines[1:] == ["1 problem(s)"]  # its traits' uses are not reported again
    assert "Traceback" not in result.stderr


def test_a_customer_without_a_declared_trait_gets_its_default_never_a_failure(
    roast: Settings, sendgrid: SendGridStandIn
) -> None:
    flow = Flow(roast)
    try:
        flow.ingest(
            [
                person("ada"),
                person("bob", favourite_roast="dark", nickname="Bobby "),
                event("ada", "roast", "2026-11-22T11:00:00Z"),
                event("bob", "roast", "2026-11-22T11:00:00Z"),
            ]
        )
        flow.run("2026-11-22T12:00:00Z")
        assert [r.status for r in flow.deliveries()] == ["sent", "sent"]
    finally:
        flow.close()
    subjects = sorted(m["subject"] for m in sendgrid.messages())
    assert subjects == ["Bobby Your dark", "Your house blend"]


def test_ingest_keeps_undeclared_traits_and_lists_them(roast: Settings, kit_env: dict[str, str]) -> None:
    flow = Flow(roast)
    try:
        result = flow.ingest(
            [
                person("ada", favourite_roast="dark", shoe_size=38),
                person("bob", shoe_size=44, loyalty_card="yes"),
            ]
        )
        assert result.applied == 2 and not result.rejected
    finally:
        flow.close()
    listed = cli("traits", "unknown", "--json", env=kit_env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [
        {"trait": "loyalty_card", "customers": 1},
        {"trait": "shoe_size", "customers": 2},
    ]
    table = cli("traits", "unknown", env=kit_env)
    assert "shoe_size" in table.stdout and "favourite_roast" not in table.stdout
    assert "ada@example.com" not in table.stdout


def test_a_campaign_filter_naming_an_unknown_trait_is_refused(env: dict[str, str]) -> None:
    result = cli(
        "campaign", "send", "seasonal_offer", "--dry-run", "--where", "{trait: tierr, eq: gold}", env=env
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: --where: unknown trait 'tierr' (did you mean 'tier'?); declare custom traits in traits.yaml"
    )
    declared = cli(
        "campaign",
        "send",
        "seasonal_offer",
        "--dry-run",
        "--where",
        "{trait: favourite_roast, eq: dark}",
        env=env,
    )
    assert declared.returncode == 0, declared.stderr
