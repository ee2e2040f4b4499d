"""A tracking request's calls split and sized: the 32 KB limit counts bytes as sent, in UTF-8."""

from __future__ import annotations

import datetime as dt

import pytest

from automation.web.tracking import Refused, parse_body

RECEIVED = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def call(note: str) -> dict[str, object]:
    return {"type": "track", "userId": "c", "event": "e", "properties": {"note": note}}


def test_a_call_of_non_ascii_text_under_32_kb_in_utf8_is_taken() -> None:
    parsed = parse_body("batch", {"batch": [call("é" * 12_000)]}, RECEIVED)  # 24 KB in UTF-8
    assert (len(parsed.calls), parsed.rejected) == (1, [])


def test_a_call_over_32_kb_refuses_the_whole_batch() -> None:
    with pytest.raises(Refused) as refused:
        parse_body("batch", {"batch": [call("x"), call("é" * 17_000)]}, RECEIVED)
    assert (refused.value.status, str(refused.value)) == (413, "call 1 is over 32 KB")


def test_calls_that_cannot_be_taken_are_listed_by_index_and_the_rest_kept() -> None:
    parsed = parse_body(
        "batch", {"batch": [call("a"), {"type": "track"}, "nope"], "context": {"ip": "x"}}, RECEIVED
    )
    assert parsed.indexes == [0]
    assert parsed.rejected == [
        (1, "missing userId or anonymousId"),
        (2, "type must be identify, track, page, screen or alias"),
    ]


def nested(depth: int) -> object:
    value: object = "deep"
    for _ in range(depth):
        value = {"a": value}
    return value


HOSTILE = {
    "a_lone_surrogate": (call("\ud800"), "a text value holds a lone surrogate (invalid Unicode)"),
    "a_nul": (call("a\x00b"), "a text value holds a NUL character"),
    "nesting_past_32_levels": (call(nested(40)), "nested deeper than 32 levels"),
    # 32 brackets in the call, 33 levels once its context is put in the event's properties.
    "a_context_one_level_too_deep": (
        {"type": "track", "userId": "c", "event": "e", "context": nested(31)},
        "nested deeper than 32 levels",
    ),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_call_with_a_value_no_database_stores_is_rejected_in_ingests_words(name: str) -> None:
    item, reason = HOSTILE[name]
    parsed = parse_body("batch", {"batch": [call("fine"), item]}, RECEIVED)
    assert (parsed.indexes, parsed.rejected) == ([0], [(1, reason)])


def test_a_batch_context_nested_too_deep_rejects_the_calls_it_joins() -> None:
    body = {"batch": [call("a"), call("b")], "context": {"page": nested(31)}}
    parsed = parse_body("batch", body, RECEIVED)
    assert parsed.calls == []
    assert parsed.rejected == [(0, "nested deeper than 32 levels"), (1, "nested deeper than 32 levels")]


def test_a_call_nested_just_inside_the_limit_is_taken() -> None:
    parsed = parse_body("batch", {"batch": [call(nested(29))]}, RECEIVED)
    assert (len(parsed.calls), parsed.rejected) == (1, [])
