"""Subscription topics on real PostgreSQL, Redis and the SendGrid stand-in: judged, recorded, set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from automation.config import Settings, load_settings
from automation.store import topics as topic_choices
from tests.deliverykit import event, person, write_workspace
from tests.harness import Flow, cli, identify
from tests.standins import SendGridStandIn

NOW = "2026-11-22T12:00:00Z"
EARLIER = "2026-11-22T11:00:00Z"
TOPICS = """topics:
  - {id: promotions, name: Offers, description: Seasonal offers., channel: email, default: opt_in}
  - {id: newsletter, name: Letter, channel: email, default: opt_in}
  - {id: tips, name: Brewing tips, channel: email, default: opt_out}
"""
TOPIC_JOURNEYS = {"promo_t": "promotions", "letter_t": "newsletter", "tips_t": "tips"}


def topic_workspace(folder: Path) -> tuple[Path, Path]:
    journeys, templates = write_workspace(folder)
    (journeys / "topics.yaml").write_text(TOPICS, encoding="utf-8")
    for jid, topic in TOPIC_JOURNEYS.items():
        (journeys / f"{jid}.yaml").write_text(
            f"id: {jid}\nname: {jid}\ntopic: {topic}\ntrigger: {{event: {{name: {jid}}}}}\n"
            "frequency_cap: false\nquiet_hours: false\n"
            "steps:\n  - send: {channel: email, template: promo_mail}\n",
            encoding="utf-8",
        )
    return journeys, templates


@pytest.fixture
def topic_env(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    journeys, templates = topic_workspace(tmp_path / "kit")
    values = {**env, "AUTOMATION_JOURNEYS_DIR": str(journeys), "AUTOMATION_TEMPLATES_DIR": str(templates)}
    for key in ("AUTOMATION_JOURNEYS_DIR", "AUTOMATION_TEMPLATES_DIR"):
        monkeypatch.setenv(key, values[key])
    return values


@pytest.fixture
def topic_settings(topic_env: dict[str, str]) -> Settings:
    return load_settings()


@pytest.fixture
def flow(topic_settings: Settings) -> Iterator[Flow]:
    f = Flow(topic_settings)
    yield f
    f.close()


def statuses(flow: Flow) -> dict[str, tuple[str, str | None]]:
    return {d.journey_id: (d.status, d.reason) for d in flow.deliveries()}


def test_a_customer_who_left_promotions_gets_the_receipt_and_the_letter_but_no_promotion(
    flow: Flow, sendgrid: SendGridStandIn
) -> None:
    flow.ingest([person("ada", topics={"promotions": False})])
    flow.ingest([event("ada", name, EARLIER) for name in ("promo_t", "letter_t", "receipt")])
    flow.run(NOW)
    assert statuses(flow) == {
        "promo_t": ("skipped", "topic: promotions"),
        "letter_t": ("sent", None),
        "receipt": ("sent", None),
    }
    assert len(sendgrid.accepted) == 2


def test_defaults_hold_for_customers_who_never_chose(flow: Flow) -> None:
    flow.ingest([person("bob")])
    flow.ingest([event("bob", name, EARLIER) for name in ("promo_t", "tips_t")])
    flow.run(NOW)
    assert statuses(flow) == {"promo_t": ("sent", None), "tips_t": ("skipped", "topic: tips")}


def test_journeys_without_a_topic_keep_their_behaviour(flow: Flow) -> None:
    flow.ingest([person("cy"), person("di", email_opt_in=False)])
    flow.ingest([event("cy", "late", EARLIER), event("di", "late", EARLIER)])
    flow.run(NOW)
    by_customer = {d.customer_id: (d.status, d.reason) for d in flow.deliveries()}
    assert by_customer == {"cy": ("sent", None), "di": ("skipped", "consent: no email_opt_in")}


def test_a_customer_who_left_the_built_in_marketing_topic_gets_no_untopical_marketing(flow: Flow) -> None:
    flow.ingest([person("ed", topics={"marketing": False})])
    flow.ingest([event("ed", "late", EARLIER), event("ed", "receipt", EARLIER)])
    flow.run(NOW)
    assert statuses(flow) == {"late_ok": ("skipped", "topic: marketing"), "receipt": ("sent", None)}


def test_the_newest_choice_wins_whatever_the_order_of_arrival(flow: Flow) -> None:
    flow.ingest([identify("fy", "2026-11-20T00:00:00Z", topics={"tips": True})])
    flow.ingest([identify("fy", "2026-11-10T00:00:00Z", topics={"tips": False})])
    with flow.runtime.sessions() as s:
        choice = topic_choices.of(s, ["fy"])["fy"]["tips"]
    assert (choice.subscribed, choice.how, choice.chosen_at.isoformat()) == (
        True,
        "ingest",
        "2026-11-20T00:00:00+00:00",
    )


def test_a_malformed_topics_trait_is_refused_with_its_line(flow: Flow) -> None:
    result = flow.ingest([identify("gus", topics={"promotions": "no"}), identify("hal", topics=["x"])])
    assert [r.split(": ", 1)[1] for r in result.rejected] == [
        "traits.topics.promotions must be true or false",
        "traits.topics must be an object of topic ids to true or false",
    ]
    with flow.runtime.sessions() as s:
        assert topic_choices.of(s, ["gus", "hal"]) == {}


def test_topics_set_records_a_cli_choice_and_customers_show_lists_every_topic(
    flow: Flow, topic_env: dict[str, str]
) -> None:
    flow.ingest([person("ida")])
    done = cli("topics", "set", "ida", "promotions", "off", "--now", NOW, env=topic_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ida: promotions off"
    shown = cli("customers", "show", "ida", env=topic_env)
    assert shown.returncode == 0, shown.stderr
    rows = [line.strip("│").split("│") for line in shown.stdout.splitlines() if line.startswith("│")]
    topics = {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows if len(cells) == 5}
    assert topics == {
        "marketing": ["on", "-", "default", "-"],
        "promotions": ["off", "2026-11-22T12:00:00+00:00", "cli", "-"],
        "newsletter": ["on", "-", "default", "-"],
        "tips": ["off", "-", "default", "-"],
    }
    exported = cli("customers", "export", "ida", env=topic_env)
    assert '"how": "cli"' in exported.stdout and '"topic": "promotions"' in exported.stdout
    flow.ingest([event("ida", "promo_t", EARLIER)])
    flow.run(NOW)
    assert statuses(flow) == {"promo_t": ("skipped", "topic: promotions")}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ida", "nope", "on"), "unknown topic 'nope'"),
        (("ida", "tips", "maybe"), "state must be on or off, not 'maybe'"),
        (("nobody", "tips", "on"), "no customer 'nobody'"),
    ],
)
def test_topics_set_refuses_bad_input_in_one_line(
    flow: Flow, topic_env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    flow.ingest([person("ida")])
    done = cli("topics", "set", *args, env=topic_env)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr
    with flow.runtime.sessions() as s:
        assert topic_choices.of(s, ["ida", "nobody"]) == {}


def test_a_bad_topics_file_is_reported_with_file_line_and_column(tmp_path: Path) -> None:
    journeys, templates = topic_workspace(tmp_path / "bad")
    (journeys / "topics.yaml").write_text(
        "topics:\n  - id: promotions\n    name: Offers\n    chanel: email\n", encoding="utf-8"
    )
    done = cli("journeys", "validate", str(journeys), "--templates", str(templates))
    assert done.returncode != 0
    assert (
        f"{journeys / 'topics.yaml'}:4:5: unknown key 'chanel' (did you mean 'channel'?)"
        in done.stdout + done.stderr
    )
