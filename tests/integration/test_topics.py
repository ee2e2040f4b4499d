"""Subscription topics on real PostgreSQL, Redis and the SendGrid stand-in: judged, recorded, set."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from automation.config import Settings, load_settings
from automation.store import topics as topic_choices
from automation.store.models import Delivery
from tests.deliverykit import event, person, write_workspace
from tests.harness import BIN, Flow, cli, identify, utc
from tests.integration.test_web_process import free_port, start, stop, wait_for
from tests.standins import SendGridStandIn
from tests.webhooks import PUBLIC_URL

NOW = "2026-11-22T12:00:00Z"
EARLIER = "2026-11-22T11:00:00Z"
TOPICS = """topics:
  - {id: promotions, name: Offers, description: "Seasonal <b>offers</b>.", channel: email, default: opt_in}
  - {id: newsletter, name: Letter, channel: email, default: opt_in}
  - {id: tips, name: Brewing tips, channel: email, default: opt_out}
"""
TOPIC_JOURNEYS = {"promo_t": "promotions", "letter_t": "newsletter", "tips_t": "tips"}
SIGNUP = """id: tips_signup
name: Brewing tips sign-up
topic: tips
double_opt_in: true
trigger: {event: {name: tips_signup}}
quiet_hours: false
steps:
  - send: {channel: email, template: confirm_mail}
"""
CONFIRM_MAIL = {
    "subject.txt": "Please confirm",
    "body.html": '{% extends "_layouts/email.html" %}{% block content %}<p>{{ confirm_url }}</p>{% endblock %}',
    "body.txt": "Confirm: {{ confirm_url }}\n",
}


def topic_workspace(folder: Path) -> tuple[Path, Path]:
    journeys, templates = write_workspace(folder)
    (journeys / "topics.yaml").write_text(TOPICS, encoding="utf-8")
    (journeys / "tips_signup.yaml").write_text(SIGNUP, encoding="utf-8")
    (templates / "confirm_mail").mkdir()
    for name, text in CONFIRM_MAIL.items():
        (templates / "confirm_mail" / name).write_text(text, encoding="utf-8")
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
    values = {
        **env,
        "AUTOMATION_JOURNEYS_DIR": str(journeys),
        "AUTOMATION_TEMPLATES_DIR": str(templates),
        "AUTOMATION_PUBLIC_URL": PUBLIC_URL,
    }
    for key in ("AUTOMATION_JOURNEYS_DIR", "AUTOMATION_TEMPLATES_DIR", "AUTOMATION_PUBLIC_URL"):
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


# ----------------------------------------------------------------- the preference centre over HTTP


@pytest.fixture
def web(topic_env: dict[str, str]) -> Iterator[httpx.Client]:
    """`automation web` on a loopback port, as a user runs it."""
    port = free_port()
    proc = start([str(BIN), "web", "--host", "127.0.0.1", "--port", str(port)], topic_env)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        wait_for(lambda: http.get("/healthz").status_code in (200, 503))
        yield http
    out = stop(proc)
    assert "@example.com" not in out


def links(sendgrid: SendGridStandIn) -> dict[str, str]:
    """Each sent email's preference-centre path, by the journey that sent it."""
    return {
        m["custom_args"]["journey_id"]: m["headers"]["List-Unsubscribe"].strip("<>").removeprefix(PUBLIC_URL)
        for m in sendgrid.messages()
    }


def confirm_link(sendgrid: SendGridStandIn) -> str:
    """The path of the confirmation link in the one email sent."""
    [mail] = sendgrid.messages()
    found = re.search(rf"{PUBLIC_URL}(/confirm/\S+)", mail["text"])
    assert found is not None
    return found[1]


def choices(flow: Flow, customer: str) -> dict[str, tuple[bool, str]]:
    with flow.runtime.sessions() as s:
        return {
            t: (c.subscribed, c.how) for t, c in topic_choices.of(s, [customer]).get(customer, {}).items()
        }


def test_the_page_lists_topics_escaped_and_saves_switches(
    flow: Flow, sendgrid: SendGridStandIn, web: httpx.Client
) -> None:
    flow.ingest([person("ada")])
    flow.ingest([event("ada", "promo_t", EARLIER)])
    flow.run(NOW)
    path = links(sendgrid)["promo_t"]
    page = web.get(path)
    assert page.status_code == 200 and "Northwind Coffee" in page.text
    assert "Seasonal &lt;b&gt;offers&lt;/b&gt;." in page.text and "<script" not in page.text
    assert re.search(r'value="promotions" checked', page.text) and re.search(r'value="tips">', page.text)
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert choices(flow, "ada") == {}  # a GET (a mail scanner) changes nothing
    saved = web.post(path, data={"action": "save", "topic": ["newsletter", "marketing"]})
    assert saved.status_code == 200 and "Your choices are saved." in saved.text
    assert choices(flow, "ada") == {"promotions": (False, "link")}  # only what changed is recorded
    flow.ingest(
        [event("ada", n, "2026-11-22T12:30:00Z") for n in ("promo_t", "letter_t", "tips_t", "receipt")]
    )
    flow.run("2026-11-22T13:00:00Z")
    later = {d.journey_id: d.reason for d in flow.deliveries() if d.due_at >= utc("2026-11-22T12:30:00Z")}
    assert later == {
        "promo_t": "topic: promotions",
        "letter_t": None,
        "tips_t": "topic: tips",
        "receipt": None,
    }


def test_one_click_leaves_the_message_topic_and_the_undo_restores_exactly(
    flow: Flow, sendgrid: SendGridStandIn, web: httpx.Client
) -> None:
    flow.ingest([person("ada"), identify("ada", "2026-11-01T00:00:00Z", topics={"promotions": True})])
    flow.ingest([event("ada", "promo_t", EARLIER)])
    flow.run(NOW)
    path = links(sendgrid)["promo_t"]
    done = web.post(path, content=b"List-Unsubscribe=One-Click", headers=FORM)
    assert done.status_code == 200
    assert choices(flow, "ada") == {"promotions": (False, "one-click")}
    assert "Undo" in done.text and "Undo" in web.get(path).text
    left = web.post(path, data={"action": "leave"})
    assert "every topic" in left.text
    assert set(choices(flow, "ada")) == {"marketing", "promotions", "newsletter", "tips"}
    undone = web.post(path, data={"action": "undo"})
    assert undone.status_code == 200 and "Your previous choices are back." in undone.text
    with flow.runtime.sessions() as s:
        [(topic, choice)] = topic_choices.of(s, ["ada"])["ada"].items()
    # The leaving undone is the last one (everything); before it, promotions was off by one-click.
    assert (topic, choice.subscribed, choice.how) == ("promotions", False, "one-click")
    assert web.post(path, data={"action": "undo"}).status_code == 410


def test_tampered_expired_and_other_customers_links_get_a_4xx_and_change_nothing(
    flow: Flow, sendgrid: SendGridStandIn, web: httpx.Client
) -> None:
    flow.ingest([person("ada"), person("bob")])
    flow.ingest([event("ada", "promo_t", EARLIER), event("bob", "letter_t", EARLIER)])
    flow.run(NOW)
    paths = links(sendgrid)
    ada_path, bob_path = paths["promo_t"], paths["letter_t"]
    kid, sealed = ada_path.removeprefix("/unsubscribe/").split(".")
    tampered = f"/unsubscribe/{kid}.{sealed[:-2]}{'AA' if sealed[-2:] != 'AA' else 'BB'}"
    for method in ("GET", "POST"):
        assert web.request(method, tampered, data={"action": "leave"}).status_code == 404
    # A message's token confirms nothing unless its journey is a double opt-in sign-up.
    assert web.post(ada_path.replace("/unsubscribe/", "/confirm/")).status_code == 404
    # Bob's link with Ada's id in the form changes Bob's choices only.
    web.post(bob_path, data={"action": "save", "topic": [], "customer_id": "ada"})
    assert choices(flow, "ada") == {}
    off = (False, "link")
    assert choices(flow, "bob") == {"marketing": off, "promotions": off, "newsletter": off}
    age(flow, dt.timedelta(days=91))
    assert web.get(ada_path).status_code == 410
    assert web.post(ada_path, data={"action": "leave"}).status_code == 410
    assert choices(flow, "ada") == {}


def age(flow: Flow, by: dt.timedelta) -> None:
    """Make every message `by` older, as the wall-clock web process sees it."""
    with flow.runtime.sessions.begin() as s:
        for d in s.scalars(select(Delivery)):
            assert d.sent_at is not None
            d.sent_at -= by


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_double_opt_in_keeps_the_topic_off_until_confirmed(
    flow: Flow, sendgrid: SendGridStandIn, web: httpx.Client
) -> None:
    flow.ingest([person("ada", topics={"tips": True})])
    flow.ingest([event("ada", "tips_t", EARLIER), event("ada", "tips_signup", EARLIER)])
    flow.run(NOW)
    assert statuses(flow) == {"tips_t": ("skipped", "topic: tips"), "tips_signup": ("sent", None)}
    confirm = confirm_link(sendgrid)
    shown = web.get(confirm)
    assert shown.status_code == 200 and "Confirm" in shown.text
    assert choices(flow, "ada") == {"tips": (True, "ingest")}  # a GET confirms nothing
    assert web.post(confirm).status_code == 200
    with flow.runtime.sessions() as s:
        choice = topic_choices.of(s, ["ada"])["ada"]["tips"]
    assert choice.how == "confirmation" and choice.confirmed_at is not None
    flow.ingest([event("ada", "tips_t", "2026-11-22T12:30:00Z", n=2)])
    flow.run("2026-11-22T13:00:00Z")
    assert [d.status for d in flow.deliveries(journey_id="tips_t")] == ["skipped", "sent"]


def test_an_unconfirmed_request_expires_after_seven_days(
    flow: Flow, sendgrid: SendGridStandIn, web: httpx.Client
) -> None:
    flow.ingest([person("ada")])
    flow.ingest([event("ada", "tips_signup", EARLIER)])
    flow.run(NOW)
    confirm = confirm_link(sendgrid)
    age(flow, dt.timedelta(days=7))
    assert web.post(confirm).status_code == 410
    assert choices(flow, "ada") == {}


def test_the_tracking_api_records_topic_choices_as_api(
    flow: Flow, topic_env: dict[str, str], web: httpx.Client
) -> None:
    created = cli("keys", "create", "shop", env=topic_env)
    assert created.returncode == 0, created.stderr
    auth = (created.stdout.strip(), "")
    call = {"userId": "jo", "traits": {"email": "jo@example.com", "topics": {"newsletter": False}}}
    assert web.post("/v1/identify", json=call, auth=auth).status_code == 200
    bad = {"userId": "jo", "traits": {"topics": {"newsletter": "no"}}}
    refused = web.post("/v1/identify", json=bad, auth=auth)
    assert refused.status_code == 400 and "traits.topics.newsletter" in refused.text
    assert choices(flow, "jo") == {"newsletter": (False, "api")}


def test_a_journey_naming_an_unknown_topic_is_refused_with_its_position(tmp_path: Path) -> None:
    journeys, templates = topic_workspace(tmp_path / "bad")
    (journeys / "odd.yaml").write_text(
        "id: odd\nname: Odd\ntopic: promotion\ntrigger: manual\n"
        "steps:\n  - send: {channel: email, template: promo_mail}\n",
        encoding="utf-8",
    )
    done = cli("journeys", "validate", str(journeys), "--templates", str(templates))
    assert done.returncode == 1
    assert f"{journeys / 'odd.yaml'}:3:8: unknown topic 'promotion'" in done.stdout + done.stderr
