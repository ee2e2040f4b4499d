"""Experiments end to end: holdouts, variants and the global control group, ticked at a given `now`.

Real PostgreSQL, Redis and the SendGrid SDK against its stand-in. Every arm is
checked against `core.assignment` for the same ids, so the recorded arms are the
deterministic ones, and held-out customers are shown to receive nothing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from automation.config import Settings
from automation.core import assignment
from automation.core import experiment_stats as es
from automation.core.statuses import DeliveryStatus
from automation.insight import experiments, reporting
from automation.insight.explain import explain
from automation.store.erasure import forget
from automation.store.models import Customer, Enrollment, SplitDecision
from automation.web.dashboard.accounts import Role, User
from automation.web.dashboard.app import Dashboard
from automation.web.dashboard.pages import Ask
from automation.web.dashboard.timeline import timeline
from tests.harness import Flow, cli, identify, track, utc
from tests.standins import SendGridStandIn

ROOT = Path(__file__).resolve().parents[2]
MakeFlow = Callable[..., Flow]
IDS = [f"c{n:03d}" for n in range(120)]
JOINED = "2026-11-20T10:00:00Z"
NOW = "2026-11-20T12:00:00Z"

AB = """id: welcome_ab
name: Welcome A/B
trigger: {event: {name: joined}}
holdout: 20%
goal: {event: order_placed, within: 7d}
steps:
  - send:
      id: hello
      channel: email
      variants:
        - {id: warm, template: warm, weight: 50}
        - {id: short, template: short, weight: 50}
"""
NEWS = """id: news
name: News
trigger: {event: {name: joined}}
steps:
  - send: {channel: email, template: warm}
"""
PLAIN = """id: plain
name: Plain
trigger: manual
steps:
  - send: {channel: email, template: warm}
"""
RECEIPT = """id: receipt
name: Receipt
transactional: true
trigger: {event: {name: joined}}
steps:
  - send: {channel: email, template: short}
"""


@pytest.fixture
def make_flow(settings: Settings, tmp_path: Path) -> Iterator[MakeFlow]:
    flows: list[Flow] = []
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    for name, subject in {"warm": "A warm welcome, {{ customer.first_name }}", "short": "Hi"}.items():
        (templates / name).mkdir()
        (templates / name / "subject.txt").write_text(subject)
        (templates / name / "body.html").write_text(
            '{% extends "_layouts/email.html" %}{% block content %}' + subject + "{% endblock %}"
        )
        (templates / name / "body.txt").write_text(subject + "\n{{ unsubscribe_url }}")

    def make(journeys: dict[str, str], **overrides: object) -> Flow:
        folder = tmp_path / f"journeys-{len(flows)}"
        folder.mkdir()
        for name, text in journeys.items():
            (folder / f"{name}.yaml").write_text(text)
        update = {"journeys_dir": folder, "templates_dir": templates, **overrides}
        flow = Flow(settings.model_copy(update=update))
        flows.append(flow)
        return flow

    yield make
    for flow in flows:
        flow.close()


def _people() -> list[dict[str, object]]:
    return [
        identify(cid, "2020-01-01T00:00:00Z", email=f"{cid}@example.com", first_name=cid, email_opt_in=True)
        for cid in IDS
    ] + [track(cid, "joined", JOINED, f"j-{cid}") for cid in IDS]


def _expected_arm(cid: str) -> str:
    if assignment.held_out("welcome_ab", cid, 20):
        return "holdout"
    return assignment.pick("welcome_ab", "hello", cid, [("warm", 50), ("short", 50)]).arm


def test_held_out_entrants_get_a_held_out_delivery_and_no_message(
    make_flow: MakeFlow, sendgrid: SendGridStandIn
) -> None:
    flow = make_flow({"welcome_ab": AB})
    flow.ingest(_people())
    report = flow.run(NOW)
    made = {d.customer_id: d for d in flow.deliveries()}
    assert set(made) == set(IDS)
    assert {cid: d.arm for cid, d in made.items()} == {cid: _expected_arm(cid) for cid in IDS}
    held = {cid for cid, d in made.items() if d.arm == "holdout"}
    assert 10 <= len(held) <= 40  # 20% of 120, by the hash
    assert {made[cid].status for cid in held} == {DeliveryStatus.HELD_OUT}
    assert {made[cid].status for cid in set(IDS) - held} == {DeliveryStatus.SENT}
    assert report.enqueued == len(IDS) - len(held)
    # The held-out delivery names the template it would have sent.
    assert all(made[cid].template in ("warm", "short") for cid in held)
    assert {made[cid].template for cid in set(IDS) - held if made[cid].arm == "warm"} == {"warm"}
    sent_to = sorted(m["to"] for m in sendgrid.messages())
    assert sent_to == sorted(f"{cid}@example.com" for cid in set(IDS) - held)
    subjects = {m["to"].split("@")[0]: m["subject"] for m in sendgrid.messages()}
    assert all(
        subjects[cid] == (f"A warm welcome, {cid}" if made[cid].arm == "warm" else "Hi") for cid in subjects
    )
    # A re-run makes nothing new and sends nothing again.
    assert flow.run("2026-11-20T12:05:00Z").deliveries == 0
    assert len(sendgrid.messages()) == len(IDS) - len(held)
    # The customer's history and the status report show the held-out message.
    some = sorted(held)[0]
    (message,) = reporting.customer(flow.runtime.sessions, some).messages
    assert (message["status"], message["arm"]) == ("held_out", "holdout")
    assert (
        message["reason"] == "held out: the journey's holdout gets no message (measured against the others)"
    )
    (stats,) = reporting.status(flow.runtime.sessions, flow.runtime.catalog, journey_id="welcome_ab")
    assert stats.deliveries["held_out"] == len(held)
    with flow.runtime.sessions() as s:
        c = s.get(Customer, some)
        assert c is not None
        titles = [e.title for e in timeline(s, c, before=None, default_tz="UTC", full=True).entries]
    assert (
        "email not sent (held out: the journey's holdout gets no message (measured against the others))"
        in titles
    )


def test_experiments_show_counts_each_arm_held_out_entrants_convert_and_the_journey_page_shows_it(
    make_flow: MakeFlow, env: dict[str, str], sendgrid: SendGridStandIn
) -> None:
    flow = make_flow({"welcome_ab": AB, "plain": PLAIN})
    flow.ingest(_people())
    flow.run(NOW)
    arms = {cid: _expected_arm(cid) for cid in IDS}
    buyers = IDS[::3]
    late = IDS[1]  # after the 7-day window: no conversion
    flow.ingest(
        [track(cid, "order_placed", "2026-11-22T09:00:00Z", f"o-{cid}", total=40.0) for cid in buyers]
        + [track(cid, "order_placed", "2026-11-23T09:00:00Z", f"o2-{cid}", total=10.0) for cid in buyers[:4]]
        + [track(late, "order_placed", "2026-11-28T09:00:00Z", "o-late", total=99.0)],
        now="2026-11-29T00:00:00Z",
    )
    (result,) = experiments.show(flow.runtime.sessions, flow.runtime.catalog, "welcome_ab")
    assert result.baseline == "holdout"
    assert [a.arm for a in result.arms] == ["holdout", "warm", "short"]
    by_arm = {a.arm: a for a in result.arms}
    for arm, row in by_arm.items():
        members = [cid for cid in IDS if arms[cid] == arm]
        converted = [cid for cid in members if cid in buyers]
        assert row.entrants == len(members)
        assert row.converted == len(converted)
        assert row.sent == (0 if arm == "holdout" else len(members))
        revenue = 40.0 * len(converted) + 10.0 * len([c for c in converted if c in buyers[:4]])
        assert row.revenue == pytest.approx(revenue)
        assert row.conversion_rate == pytest.approx(len(converted) / len(members))
    assert by_arm["holdout"].converted > 0  # held-out entrants count for the goal
    assert by_arm["holdout"].lift is None and by_arm["warm"].lift is not None
    assert result.verdict == "not enough data"  # under 500 entrants per arm
    assert result.srm is not None and not result.srm.flagged
    dashboard = Dashboard(flow.settings, flow.runtime.sessions, lambda: utc(NOW))
    ask = Ask(User(1, "v@example.com", Role.VIEWER), utc(NOW), path={"journey_id": "welcome_ab"})
    page = dashboard.render(dashboard.views.journey(ask), None)
    assert "verdict: not enough data" in page
    for a in result.arms:
        assert f"<td>{a.entrants}</td><td>{a.sent}</td><td>{a.converted}</td>" in page
    assert "warm</th>" in page and "holdout <small>(baseline)</small>" in page
    shown = cli("experiments", "show", "welcome_ab", "--json", env=_env(env, flow))
    assert shown.returncode == 0, shown.stderr
    payload = json.loads(shown.stdout)
    (exp,) = payload["experiments"]
    assert [(a["arm"], a["entrants"], a["converted"]) for a in exp["arms"]] == [
        (a.arm, a.entrants, a.converted) for a in result.arms
    ]
    assert exp["verdict"] == "not enough data"
    for journey, why in (("nope", "no journey 'nope'"), ("plain", "journey 'plain' has no experiment")):
        refused = cli("experiments", "show", journey, env=_env(env, flow))
        assert refused.returncode == 1
        assert refused.stderr.count("\n") == 1 and why in refused.stderr, refused.stderr
    listed = cli("experiments", "list", env=_env(env, flow))
    assert listed.returncode == 0, listed.stderr
    assert "welcome_ab" in listed.stdout and "holdout 20%" in listed.stdout and "warm 40%" in listed.stdout


def _env(env: dict[str, str], flow: Flow) -> dict[str, str]:
    s = flow.settings
    return {
        **env,
        "AUTOMATION_JOURNEYS_DIR": str(s.journeys_dir),
        "AUTOMATION_TEMPLATES_DIR": str(s.templates_dir),
    }


def test_the_global_control_group_gets_no_marketing_message_but_its_transactional_ones(
    make_flow: MakeFlow, sendgrid: SendGridStandIn
) -> None:
    flow = make_flow({"news": NEWS, "receipt": RECEIPT}, global_holdout_pct=25.0)
    flow.ingest(_people())
    flow.run(NOW)
    control = {cid for cid in IDS if assignment.in_global_control(cid, 25)}
    assert 15 <= len(control) <= 45
    news = {d.customer_id: d for d in flow.deliveries(journey_id="news")}
    assert {cid for cid, d in news.items() if d.status == DeliveryStatus.HELD_OUT} == control
    assert {news[cid].arm for cid in control} == {"global_control"}
    assert {news[cid].status for cid in set(IDS) - control} == {DeliveryStatus.SENT}
    assert {d.status for d in flow.deliveries(journey_id="receipt")} == {DeliveryStatus.SENT}
    recipients = [m["to"] for m in sendgrid.messages()]
    assert sorted(recipients) == sorted(
        [f"{cid}@example.com" for cid in IDS] + [f"{cid}@example.com" for cid in set(IDS) - control]
    )


def test_explain_says_which_arm_and_why(make_flow: MakeFlow) -> None:
    flow = make_flow({"welcome_ab": AB})
    flow.ingest(_people())
    journey = flow.runtime.catalog.journeys["welcome_ab"]
    held = next(cid for cid in IDS if _expected_arm(cid) == "holdout")
    warm = next(cid for cid in IDS if _expected_arm(cid) == "warm")
    with flow.runtime.sessions() as s:
        held_lines = explain(s, journey, flow.runtime.catalog, held, utc(NOW), "UTC").lines
        warm_lines = explain(s, journey, flow.runtime.catalog, warm, utc(NOW), "UTC").lines
    h = assignment.held_out("welcome_ab", held, 20)
    assert h is not None
    prefix = f"step hello: arm holdout, held out (no message, measured) (holdout: {h.why()}; "
    assert any(line.startswith(prefix) for line in held_lines), held_lines
    w = assignment.pick("welcome_ab", "hello", warm, [("warm", 50), ("short", 50)])
    assert f"step hello: arm warm (warm: {w.why()})" in warm_lines


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        (
            "[{id: a, template: warm, weight: 50}, {id: a, template: short, weight: 50}]",
            "duplicate variant id 'a'",
        ),
        ("[{id: a, template: warm, weight: 0}, {id: b, template: short, weight: 50}]", "greater than 0"),
        (
            "[{id: a, template: warm, weight: 50}, {id: b, template: nope, weight: 50}]",
            "unknown template 'nope'",
        ),
    ],
)
def test_bad_variants_are_one_line_at_their_position(
    env: dict[str, str], tmp_path: Path, variants: str, message: str
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "ab.yaml").write_text(
        "id: ab\nname: AB\ntrigger: {event: {name: joined}}\nsteps:\n"
        f"  - send:\n      channel: email\n      variants: {variants}\n"
    )
    templates = tmp_path / "t"
    shutil.copytree(ROOT / "templates", templates)
    for name in ("warm", "short"):
        shutil.copytree(ROOT / "templates" / "post_purchase_thanks", templates / name)
    result = cli("journeys", "validate", str(folder), env={**env, "AUTOMATION_TEMPLATES_DIR": str(templates)})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{folder}/ab.yaml:7:"), result.stderr
    assert message in result.stderr


SPLIT = """id: split_offer
name: Offer or not
trigger: {event: {name: joined}}
frequency_cap: false
steps:
  - split:
      id: offer-or-not
      paths:
        - {id: coupon, weight: 30, steps: [{send: {channel: email, template: warm}}]}
        - {id: plain, weight: 70, steps: []}
  - send: {id: after, channel: email, template: short}
"""


def test_a_split_sends_each_entrant_down_the_path_of_its_bucket_and_rejoins(
    make_flow: MakeFlow, sendgrid: SendGridStandIn
) -> None:
    flow = make_flow({"split_offer": SPLIT})
    flow.ingest(_people())
    flow.run(NOW)
    flow.run("2026-11-20T12:05:00Z")  # a re-run takes nobody down a second path
    made: dict[str, list[str]] = {}
    for d in flow.deliveries(journey_id="split_offer"):
        made.setdefault(d.customer_id, []).append(d.step_id)
    paths = {
        cid: assignment.pick("split_offer", "offer-or-not", cid, [("coupon", 30), ("plain", 70)]).arm
        for cid in IDS
    }
    assert {cid: sorted(steps) for cid, steps in made.items()} == {
        cid: (["after", "offer-or-not.coupon-1"] if paths[cid] == "coupon" else ["after"]) for cid in IDS
    }
    assert 15 <= sum(p == "coupon" for p in paths.values()) <= 55
    assert len(sendgrid.messages()) == sum(len(steps) for steps in made.values())


SPLIT_GOAL = """id: split_goal
name: Offer or not, measured
trigger: {event: {name: joined}}
holdout: 20%
goal: {event: order_placed, within: 7d}
frequency_cap: false
steps:
  - split:
      id: offer
      paths:
        - {id: coupon, weight: 50, steps: [{send: {channel: email, template: warm}}]}
        - {id: plain, weight: 50, steps: []}
"""


def _path(cid: str) -> str:
    return assignment.pick("split_goal", "offer", cid, [("coupon", 50), ("plain", 50)]).arm


def _taken(flow: Flow) -> dict[str, str]:
    with flow.runtime.sessions() as s:
        rows = s.execute(
            select(Enrollment.customer_id, SplitDecision.path_id).join(
                Enrollment, Enrollment.id == SplitDecision.enrollment_id
            )
        )
        return {cid: path for cid, path in rows}


def test_experiments_show_reports_each_split_path_from_the_recorded_decisions(
    make_flow: MakeFlow, env: dict[str, str], sendgrid: SendGridStandIn
) -> None:
    flow = make_flow({"split_goal": SPLIT_GOAL}, global_holdout_pct=10.0)
    flow.ingest(_people())
    flow.run(NOW)
    flow.run("2026-11-20T12:05:00Z")  # a re-run decides nothing again
    # Every entrant's path is recorded, the empty path's too (it makes no delivery).
    assert _taken(flow) == {cid: _path(cid) for cid in IDS}
    buyers = set(IDS[::3])
    flow.ingest(
        [track(cid, "order_placed", "2026-11-22T09:00:00Z", f"o-{cid}", total=40.0) for cid in buyers]
        + [track(IDS[1], "order_placed", "2026-11-28T09:00:00Z", "o-late", total=99.0)],  # after the window
        now="2026-11-29T00:00:00Z",
    )
    control = {cid for cid in IDS if assignment.in_global_control(cid, 10)}
    held = {cid for cid in set(IDS) - control if assignment.held_out("split_goal", cid, 20)}
    assert control and held
    results = experiments.show(flow.runtime.sessions, flow.runtime.catalog, "split_goal", 10.0)
    (split,) = [r for r in results if r.split]
    assert (split.step_id, split.baseline, [a.arm for a in split.arms]) == (
        "offer",
        "coupon",
        ["coupon", "plain"],
    )
    counts = []
    for row in split.arms:
        members = [cid for cid in IDS if _path(cid) == row.arm and cid not in control | held]
        converted = [cid for cid in members if cid in buyers]
        assert (row.entrants, row.converted) == (len(members), len(converted))
        assert row.sent == (len(members) if row.arm == "coupon" else 0)
        assert row.revenue == pytest.approx(40.0 * len(converted))
        assert row.conversion_rate == pytest.approx(len(converted) / len(members))
        assert row.weight == 50
        counts.append(es.Counts(row.arm, len(members), len(converted), 50))
    coupon, plain = split.arms
    assert coupon.lift is None and plain.lift == es.compare(counts[1], counts[0])
    assert plain.conversion_ci == es.wilson(counts[1].converted, counts[1].entrants)
    assert coupon.p_best is not None and coupon.p_best + (plain.p_best or 0) == pytest.approx(1)
    assert split.verdict == "not enough data"  # under 500 entrants per path
    assert split.global_control == len(control)
    assert (
        f"{len(held)} entrants of the journey's holdout are in no path (no path reached them)" in split.notes
    )
    shown = cli("experiments", "show", "split_goal", "--json", env={**_env(env, flow), **_pct(10)})
    assert shown.returncode == 0, shown.stderr
    (exp,) = [e for e in json.loads(shown.stdout)["experiments"] if e["split"]]
    assert [(a["arm"], a["entrants"], a["converted"]) for a in exp["arms"]] == [
        (a.arm, a.entrants, a.converted) for a in split.arms
    ]
    assert exp["arms"][1]["lift"]["p_value"] == pytest.approx(plain.lift.p_value)
    text = cli("experiments", "show", "split_goal", env={**_env(env, flow), **_pct(10)})
    assert text.returncode == 0, text.stderr
    assert "split_goal, split offer, by path" in text.stdout and "verdict: not enough data" in text.stdout
    listed = cli("experiments", "list", env=_env(env, flow))
    assert "coupon 50%, plain 50%" in listed.stdout, listed.stdout


def _pct(pct: float) -> dict[str, str]:
    return {"AUTOMATION_GLOBAL_HOLDOUT_PCT": str(pct)}


def test_explain_says_which_path_and_why_and_erasure_keeps_the_path_count(make_flow: MakeFlow) -> None:
    flow = make_flow({"split_goal": SPLIT_GOAL})
    flow.ingest(_people())
    flow.run(NOW)
    journey = flow.runtime.catalog.journeys["split_goal"]
    cid = IDS[0]
    with flow.runtime.sessions() as s:
        lines = explain(s, journey, flow.runtime.catalog, cid, utc("2026-11-21T00:00:00Z"), "UTC").lines
    a = assignment.pick("split_goal", "offer", cid, [("coupon", 50), ("plain", 50)])
    assert f"split offer: path {a.arm} ({a.why()}); took path {a.arm} when last here" in lines, lines
    with flow.runtime.sessions.begin() as s:
        forget(s, cid, utc("2026-11-21T00:00:00Z"))
    taken = _taken(flow)
    assert cid not in taken and len(taken) == len(IDS)  # the path is counted, under a pseudonym
