"""The one walker over nested steps: ids, positions, what follows, and the checks at load time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from automation.advance.plan import advance
from automation.core.journeys import Journey
from automation.definitions.loader import parse_filter, parse_journey
from automation.errors import DefinitionError

AT = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
UTC = ZoneInfo("UTC")
HEAD = "id: j\nname: J\ntrigger: {event: {name: e}}\n"
TREE = HEAD + (
    "steps:\n"
    "  - send: {id: first, channel: email, template: t}\n"
    "  - branch:\n"
    "      id: b\n"
    "      if: {step: first, opened: true}\n"
    "      then:\n"
    "        - wait: {days: 1}\n"
    "        - send: {channel: email, template: t}\n"
    "      else: []\n"
    "  - send: {id: last, channel: sms, template: s}\n"
)


def journey(text: str = TREE) -> Journey:
    parsed, problems, _ = parse_journey(text, "j.yaml")
    assert parsed is not None, problems
    return parsed


def test_nested_steps_get_ids_positions_and_the_step_that_follows_them() -> None:
    placed = journey().placed
    assert [(p.id, p.number, p.after) for p in placed.values()] == [
        ("first", "1", "b"),
        ("b", "2", "last"),
        ("b.then-1", "2.then.1", "b.then-2"),
        ("b.then-2", "2.then.2", "last"),
        ("last", "3", None),
    ]
    assert placed["b"].starts == {"then": "b.then-1", "else": "last"}  # an empty list rejoins at once
    assert placed["b.then-2"].loc == ("steps", 1, "branch", "then", 1, "send")
    assert journey().find_step("2.then.2") == placed["b.then-2"]


def test_a_walk_stops_at_a_branch_and_goes_on_along_the_path_chosen_there() -> None:
    j = journey()
    stopped = advance(j, "first", AT, AT, UTC)
    assert (stopped.next_step_id, stopped.next_at, stopped.judged) == ("b", AT, True)
    assert [s.step_id for s in stopped.sends] == ["first"]
    then = advance(j, "b", AT, AT, UTC, chosen="then")
    assert (then.next_step_id, then.next_at) == ("b.then-2", AT + dt.timedelta(days=1))
    otherwise = advance(j, "b", AT, AT, UTC, chosen="else")
    assert ([s.step_id for s in otherwise.sends], otherwise.completed) == (["last"], True)


def test_an_enrollment_waiting_on_a_step_moved_into_a_branch_goes_on_from_it_there() -> None:
    moved = journey(
        HEAD + "steps:\n"
        "  - branch:\n"
        "      id: b\n"
        "      if: {trait: tier, eq: gold}\n"
        "      then: [{wait: {id: pause, days: 1}}, {send: {id: mid, channel: email, template: t}}]\n"
        "  - send: {id: last, channel: sms, template: s}\n"
    )
    result = advance(moved, "mid", AT, AT, UTC)  # it waited at top-level `mid` before the edit
    assert [s.step_id for s in result.sends] == ["mid", "last"] and result.completed
    assert advance(moved, "gone", AT, AT, UTC).completed  # a step removed ends the walk


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            HEAD
            + "audience: {step: first, opened: true}\nsteps:\n  - send: {id: first, channel: email, template: t}\n",
            "j.yaml:4:1: an engagement condition ({step: ID, ...}) is allowed only in a branch's or a send's `if`",
        ),
        (
            HEAD + "steps:\n  - send: {id: a, channel: email, template: t, if: {step: later, sent: true}}\n"
            "  - send: {id: later, channel: email, template: t}\n",
            "j.yaml:5:53: step 'later' is not an earlier send step (earlier: none)",
        ),
        (
            HEAD + "steps:\n  - send: {id: a, channel: email, template: t}\n"
            "  - branch: {if: {trait: tier, eq: gold}, then: [{send: {id: a, channel: email, template: t}}]}\n",
            "j.yaml:4:1: steps: duplicate step id 'a' at step 2.then.1 (ids are unique across nested steps)",
        ),
        (
            HEAD + "steps:\n  - branch: {id: b, if: {step: x, opened: true, clicked: true}}\n",
            "j.yaml:5:21: steps.0.branch.if: an engagement condition is "
            "{step: ID, sent|delivered|opened|clicked: true|false}, alone",
        ),
    ],
)
def test_misplaced_engagement_and_duplicate_nested_ids_are_one_line_errors(text: str, problem: str) -> None:
    parsed, problems, _ = parse_journey(text, "j.yaml")
    assert parsed is None and problems == [problem]


def test_a_campaign_filter_may_not_ask_about_earlier_sends() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_filter("any: [{trait: tier, eq: gold}, {step: s, opened: true}]", "--where")
    assert str(caught.value) == (
        "--where:1:32: an engagement condition ({step: ID, ...}) is allowed only in a branch's or a send's `if`"
    )
