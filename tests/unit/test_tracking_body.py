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
