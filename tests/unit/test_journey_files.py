"""Loading, validating and rendering journeys: every problem as FILE:LINE:COLUMN, the sandbox."""

from __future__ import annotations

import ast
import datetime as dt
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from automation.core.context import message_context
from automation.core.journeys import Journey, journey_json_schema
from automation.core.programme import loyalty_json_schema
from automation.core.topics import topics_json_schema
from automation.core.traits import traits_json_schema
from automation.definitions.catalog import check_catalog
from automation.definitions.loader import SIDE_FILES, parse_journey
from automation.definitions.rendering import Renderer, RenderError
from automation.enroll.kinds import template_variables

ROOT = Path(__file__).resolve().parents[2]

HEAD = "id: j\nname: J\ntrigger: {event: {name: order_placed}}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            HEAD + "stepz:\n  - send: {channel: email, template: t}\n",
            "f.yaml:4:1: unknown key 'stepz' (did you mean 'steps'?)",
        ),
        (
            HEAD + "steps:\n  - send: {channel: email, templat: t}\n",
            "f.yaml:5:28: unknown key 'templat' (did you mean 'template'?)",
        ),
        (
            HEAD + "steps:\n  - wait: {duration: 2 hours}\n",
            "f.yaml:5:22: steps.0.wait.duration: bad duration '2 hours'",
        ),
        (
            HEAD + "steps:\n  - wait: {until: '25:00'}\n",
            "f.yaml:5:19: steps.0.wait.until: bad time of day '25:00'",
        ),
        (
            "id: j\nname: J\ntrigger:\n  birthdays: {trait: birthday}\nsteps:\n  - wait: {hours: 1}\n",
            "f.yaml:4:3: unknown key 'birthdays'",
        ),
        (
            HEAD + "audience: {trait: tier, equals: gold}\nsteps:\n  - wait: {hours: 1}\n",
            "f.yaml:4:25: unknown key 'equals'",
        ),
        (HEAD + "re_entry: {cooldown: soon}\nsteps:\n  - wait: {hours: 1}\n", "bad duration 'soon'"),
        (
            HEAD + "steps:\n  - send: {channel: email, template: t, coupon: 'spring sale'}\n",
            "f.yaml:5:49: steps.0.send.coupon: String should match pattern",
        ),
        ("id: j\nname: J\ntrigger: {event: {name: x}\n", "f.yaml:4:1: invalid YAML"),
    ],
)
def test_problems_are_reported_with_their_position(text: str, expected: str) -> None:
    journey, problems, _ = parse_journey(text, "f.yaml")
    assert journey is None
    assert any(expected in p for p in problems), problems


def test_every_problem_in_a_folder_is_reported(tmp_path: Path) -> None:
    journeys, templates = tmp_path / "journeys", tmp_path / "templates"
    journeys.mkdir()
    shutil.copytree(ROOT / "templates", templates)
    (journeys / "a.yaml").write_text(HEAD + "steps:\n  - wait: {dayz: 1}\n")
    (journeys / "b.yaml").write_text(HEAD + "steps:\n  - send: {channel: email, template: nope}\n")
    (journeys / "c.yaml").write_text(
        "id: c\nname: C\ntrigger: {anniversary: {trait: birthday}}\nsteps:\n"
        "  - send: {channel: email, template: post_purchase_thanks}\n"
        "  - send: {channel: email, template: broken}\n"
    )
    (templates / "broken").mkdir()
    (templates / "broken" / "subject.txt").write_text("Hi {{ customer.first_name }\n")
    (templates / "broken" / "body.html").write_text("ok")
    (templates / "broken" / "body.txt").write_text("ok")
    catalog, problems = check_catalog(journeys, templates)
    assert catalog is None
    text = "\n".join(problems)
    assert f"{journeys}/a.yaml:5:12: unknown key 'dayz' (did you mean 'days'?)" in text
    assert f"{journeys}/b.yaml:5:38: unknown template 'nope'" in text
    # post_purchase_thanks reads `event`, which an anniversary journey cannot provide.
    assert f"{templates}/post_purchase_thanks/body.txt:3:31: uses 'event'" in text
    assert f"(template of {journeys}/c.yaml:5:38)" in text
    assert f"{templates}/broken/subject.txt:1:1: template syntax error" in text


def test_shipped_journeys_are_valid() -> None:
    catalog, problems = check_catalog(ROOT / "journeys", ROOT / "templates")
    assert problems == []
    assert catalog is not None
    assert {
        "post_purchase_thanks",
        "membership_anniversary",
        "inactive_60d",
        "tier_upgrade",
        "birthday",
    } <= set(catalog.journeys)
    for path in (ROOT / "journeys").glob("*.yaml"):
        if path.name not in SIDE_FILES:
            assert path.read_text().startswith("# yaml-language-server: $schema=journey.schema.json\n"), path
    assert (
        (ROOT / "journeys" / "topics.yaml")
        .read_text()
        .startswith("# yaml-language-server: $schema=topics.schema.json\n")
    )


@pytest.mark.parametrize(
    ("programme", "expected"),
    [
        (
            None,
            [
                "points_expiring.yaml:9:3: points_expiring needs points that expire (`points.expire` in loyalty.yaml)",
                "tier_at_risk.yaml:9:3: tier_will_downgrade needs tiers that are reviewed on their anniversary "
                "(`tiers.downgrade.at: tier_anniversary` in loyalty.yaml)",
            ],
        ),
        (
            "points:\n  earn: [{event: order_placed, per_currency_unit: 1, amount_property: total}]\n"
            "tiers:\n  levels: [{name: bronze, min: 0}, {name: gold, min: 500}]\n  downgrade: {at: immediately}\n",
            [
                "points_expiring.yaml:9:3: points_expiring needs points that expire (`points.expire` in loyalty.yaml)",
                "tier_at_risk.yaml:9:3: tier_will_downgrade needs tiers that are reviewed on their anniversary "
                "(`tiers.downgrade.at: tier_anniversary` in loyalty.yaml)",
            ],
        ),
    ],
)
def test_a_loyalty_trigger_the_programme_can_never_fire_is_a_load_error(
    tmp_path: Path, programme: str | None, expected: list[str]
) -> None:
    journeys = tmp_path / "journeys"
    shutil.copytree(ROOT / "journeys", journeys)
    (journeys / "loyalty.yaml").unlink()
    if programme is not None:
        (journeys / "loyalty.yaml").write_text(programme)
    catalog, problems = check_catalog(journeys, ROOT / "templates")
    assert catalog is None
    assert [p.removeprefix(f"{journeys}/") for p in problems if "needs" in p] == expected


def test_the_shipped_marketing_journeys_name_their_topics() -> None:
    catalog, _ = check_catalog(ROOT / "journeys", ROOT / "templates")
    assert catalog is not None
    named = {j.id: j.topic for j in catalog.journeys.values() if j.topic}
    assert set(named.values()) == {"promotions", "loyalty", "newsletter"}
    assert named["seasonal_offer"] == "promotions" and named["tier_upgrade"] == "loyalty"


def test_committed_schemas_are_the_generated_ones() -> None:
    assert (ROOT / "journeys" / "journey.schema.json").read_text() == journey_json_schema()
    assert (ROOT / "journeys" / "traits.schema.json").read_text() == traits_json_schema()
    assert (ROOT / "journeys" / "topics.schema.json").read_text() == topics_json_schema()
    assert (ROOT / "journeys" / "loyalty.schema.json").read_text() == loyalty_json_schema()


def customer(**traits: object) -> SimpleNamespace:
    base = {
        "id": "c1",
        "email": "a@example.com",
        "phone": None,
        "timezone": None,
        "first_name": "Ada",
        "last_name": None,
        "tier": "gold",
        "signed_up_at": None,
        "birthday": None,
        "email_opt_in": True,
        "sms_opt_in": False,
        "traits": {},
        "order_count": 1,
        "lifetime_value": 0,
        "last_order_at": None,
    }
    return SimpleNamespace(**{**base, **traits})


def context_for(journey_id: str, enrollment: dict, **traits: object) -> dict:
    catalog, _ = check_catalog(ROOT / "journeys", ROOT / "templates")
    assert catalog is not None
    journey: Journey = catalog.journeys[journey_id]
    return message_context(
        journey,
        customer(**traits),
        template_variables(journey, enrollment),
        delivery_id=7,
        unsubscribe_url="https://u/x",
        confirm_url="https://u/c",
        brand="Northwind Coffee",
    )


def test_traits_are_escaped_in_html_but_not_in_text() -> None:
    ctx = context_for(
        "birthday", {"years": 30, "anniversary": "2026-06-15"}, first_name="<script>x()</script>"
    )
    email = Renderer(ROOT / "templates").render_email("birthday", ctx)
    assert "<script>" not in email.html and "&lt;script&gt;x()&lt;/script&gt;" in email.html
    assert "Happy birthday, <script>x()</script>!" in email.text
    assert "https://u/x" in email.html  # the unsubscribe link from the layout


def test_the_sandbox_keeps_python_internals_out_of_reach(tmp_path: Path) -> None:
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "sms.txt").write_text("{{ customer.__class__.__mro__ }}")
    (tmp_path / "mut").mkdir()
    (tmp_path / "mut" / "sms.txt").write_text("{{ customer.traits.clear() }}")
    (tmp_path / "undef").mkdir()
    (tmp_path / "undef" / "sms.txt").write_text("{{ customer.nickname }}")
    renderer = Renderer(tmp_path)
    ctx = context_for("birthday", {"years": 1, "anniversary": "2026-06-15"}, traits={"x": 1})
    for name in ("evil", "mut", "undef"):
        with pytest.raises(RenderError):
            renderer.render_sms(name, ctx)


def test_shipped_journeys_render() -> None:
    renderer = Renderer(ROOT / "templates")
    anniversary = renderer.render_email(
        "membership_anniversary",
        context_for("membership_anniversary", {"years": 3, "anniversary": "2026-05-01"}),
    )
    assert anniversary.subject == "3 years of great coffee together, Ada"
    assert "3-year" in anniversary.text
    upgrade = renderer.render_email(
        "tier_upgrade", context_for("tier_upgrade", {"old_tier": "silver", "new_tier": "gold"})
    )
    assert upgrade.subject == "Welcome to Gold, Ada!"
    assert (
        "Early access to limited micro-lots" in upgrade.html
        and "Free shipping on every order" in upgrade.text
    )
    winback = context_for("inactive_60d", {"days_inactive": 60, "last_event_at": "2026-01-01T00:00:00+00:00"})
    assert "60 days since your last order" in renderer.render_email("winback", winback).text
    sms = renderer.render_sms("winback_sms", winback)
    assert sms.encoding == "GSM-7" and sms.segments == 1 and "Reply STOP" in sms.body
    assert isinstance(winback["last_event_at"], dt.datetime)


PURE = (
    "core/journeys",
    "core/filters",
    "core/planner",
    "definitions/rendering",
    "core/context",
    "core/durations",
    "core/rules",
    "core/records",
)
IO_MODULES = (
    "sqlalchemy.orm",
    "sqlalchemy.engine",
    "dramatiq",
    "redis",
    "httpx",
    "requests",
    "sendgrid",
    "twilio",
)


@pytest.mark.parametrize("module", PURE)
def test_the_pure_core_imports_no_io(module: str) -> None:
    tree = ast.parse((ROOT / "automation" / f"{module}.py").read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if n.startswith(IO_MODULES) or n == "time"]
