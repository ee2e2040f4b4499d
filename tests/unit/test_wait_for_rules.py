"""`wait_for`: the match key, the decision by event timestamps, the walk, and its checks at load time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from automation.advance.plan import advance
from automation.core.journeys import Journey
from automation.core.waiting import HAPPENED, TIMED_OUT, decide, match_key, matches
from automation.core.walk import Choice
from automation.definitions.loader import parse_journey

AT = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
DEADLINE = AT + dt.timedelta(hours=4)
H = dt.timedelta(hours=1)
KEY = match_key(["cart_id"], {"cart_id": "c1", "items": []})
HEAD = "id: j\nname: J\ntrigger: {event: {name: checkout_started}}\n"
STEPS = (
    "steps:\n"
    "  - wait_for:\n"
    "      id: paid\n"
    "      event: order_placed\n"
    "      match: [cart_id]\n"
    "      within: 4h\n"
    "      timed_out:\n"
    "        - send: {id: remind, channel: email, template: t}\n"
    "  - send: {id: last, channel: email, template: t}\n"
)


def journey(text: str) -> Journey:
    parsed, problems, _ = parse_journey(text, "j.yaml")
    assert parsed is not None, problems
    return parsed


def problems(text: str) -> list[str]:
    return parse_journey(text, "j.yaml")[1]


def test_the_match_key_is_canonical_text_of_the_trigger_values() -> None:
    assert KEY == '{"cart_id":"c1"}'
    assert match_key(["b", "a"], {"a": 1, "b": [2]}) == '{"a":1,"b":[2]}'
    assert match_key([], {"cart_id": "c1"}) == "{}"


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"cart_id": "c1", "total": 9}, True),
        ({"cart_id": "c2"}, False),  # another cart
        ({}, False),  # an order without a cart never counts for a cart
        ({"cart_id": None}, False),
    ],
)
def test_an_event_matches_when_it_carries_the_same_values(
    properties: dict[str, object], expected: bool
) -> None:
    assert matches(KEY, properties) is expected
    assert matches("{}", properties)  # without `match`, any such event counts


@pytest.mark.parametrize(
    ("now", "events", "expected"),
    [
        (AT + H, [(AT + H / 2, {"cart_id": "c1"})], Choice(HAPPENED, AT + H / 2)),
        (AT + H, [(AT - H, {"cart_id": "c1"})], Choice(None, DEADLINE)),  # before the step was reached
        (AT + H, [(AT + H / 2, {"cart_id": "c2"})], Choice(None, DEADLINE)),  # another cart: still parked
        (DEADLINE, [], Choice(TIMED_OUT, DEADLINE)),
        (DEADLINE + H, [(DEADLINE + H / 2, {"cart_id": "c1"})], Choice(TIMED_OUT, DEADLINE)),  # too late
        (
            DEADLINE + 9 * H,
            [(DEADLINE, {"cart_id": "c1"})],
            Choice(HAPPENED, DEADLINE),
        ),  # the deadline counts
        (AT + H, [(AT + 2 * H, {"cart_id": "c1"})], Choice(None, DEADLINE)),  # stamped after now: not yet
        (
            DEADLINE,
            [(AT + 3 * H, {"cart_id": "c1"}), (AT + 2 * H, {"cart_id": "c1"})],
            Choice(HAPPENED, AT + 2 * H),  # the first one
        ),
    ],
)
def test_the_decision_reads_event_timestamps_only(
    now: dt.datetime, events: list[tuple[dt.datetime, dict[str, object]]], expected: Choice
) -> None:
    assert decide(KEY, AT, DEADLINE, now, events) == expected


def test_the_walk_stops_at_a_wait_for_and_goes_on_along_the_list_chosen_there() -> None:
    j = journey(HEAD + STEPS)
    utc = ZoneInfo("UTC")
    stopped = advance(j, "paid", AT, AT, utc)
    assert (stopped.next_step_id, stopped.next_at, stopped.judged, stopped.sends) == ("paid", AT, True, [])
    late = advance(j, "paid", DEADLINE, DEADLINE, utc, chosen=TIMED_OUT)
    assert [(s.step_id, s.fell_due_at) for s in late.sends] == [("remind", DEADLINE), ("last", DEADLINE)]
    came = advance(j, "paid", AT + H, AT + H, utc, chosen=HAPPENED)  # an empty list: the steps after it
    assert [s.step_id for s in came.sends] == ["last"]
    assert [(p.id, p.number) for p in j.placed.values()] == [
        ("paid", "1"),
        ("remind", "1.timed_out.1"),
        ("last", "2"),
    ]


BAD_DURATION = "j.yaml:9:15: steps.0.wait_for.within: bad duration"
NEEDS_EVENT = "`match` compares with the trigger event's properties: the journey needs an event trigger"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            HEAD + STEPS.replace("within: 4h", "within: 4h\n      until: 5h"),
            "j.yaml:10:7: unknown key 'until'; expected one of: id, event, match, within, happened, timed_out",
        ),
        (HEAD + STEPS.replace("within: 4h", "within: 4 hours"), f"{BAD_DURATION} '4 hours': use a number"),
        (
            HEAD + STEPS.replace("within: 4h", "within: 3661d"),
            f"{BAD_DURATION} '3661d': at most 3660d (ten years)",
        ),
        (HEAD + STEPS.replace("within: 4h", "within: 0h"), f"{BAD_DURATION} '0h': must be longer than zero"),
        (HEAD + STEPS.replace("      within: 4h\n", ""), "j.yaml:5:5: missing required key 'within'"),
        (
            "id: j\nname: J\ntrigger: {inactivity: {event: order_placed, days: 30}}\n" + STEPS,
            f"j.yaml:8:7: {NEEDS_EVENT}",
        ),
        (
            "id: j\nname: J\ntrigger: manual\nexit_on: {event: order_placed, match: [cart_id]}\n" + STEPS,
            f"j.yaml:4:32: {NEEDS_EVENT}",
        ),
        (HEAD + STEPS.replace("id: last", "id: remind"), "j.yaml:4:1: steps: duplicate step id 'remind'"),
    ],
)
def test_bad_wait_for_steps_are_refused_with_their_position(text: str, expected: str) -> None:
    found = problems(text)
    assert any(p.startswith(expected) for p in found), found
