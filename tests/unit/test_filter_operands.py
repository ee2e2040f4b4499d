"""Filters are checked when they load: each operand against the type of what it compares, trait names."""

from __future__ import annotations

import pytest

from automation.definitions.loader import parse_filter, parse_journey
from automation.errors import DefinitionError

HEAD = "id: j\nname: J\ntrigger: {event: {name: order_placed}}\n"
STEPS = "steps:\n  - send: {channel: email, template: t, if: {trait: sms_opt_in, eq: true}}\n"


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("{fact: order_count, gt: abc}", "--where:1:1: gt: order_count compares with a number, not 'abc'"),
        ("{fact: lifetime_value, gte: '100'}", "lifetime_value compares with a number, not '100'"),
        ("{fact: lifetime_value, gt: .nan}", "lifetime_value compares with a number, not nan"),
        ("{trait: birthday, eq: x}", "eq: birthday compares with an ISO date YYYY-MM-DD, not 'x'"),
        ("{fact: last_order_at, lt: yesterday}", "last_order_at compares with an ISO 8601 date or instant"),
        ("{trait: signed_up_at, gt: 2026-13-01}", "--where:1:27: not a valid date or time"),
        ("{trait: signed_up_at, gt: '2026-13-01'}", "signed_up_at compares with an ISO 8601 date or instant"),
        ("{trait: tier, in: [gold, 3]}", "in: tier compares with text (quote it), not 3"),
        ("{trait: phone, eq: +15551234567}", "phone compares with text (quote it)"),
        ("{trait: email_opt_in, eq: 'yes'}", "email_opt_in compares with true or false"),
        ("{trait: sms_opt_in, gt: false}", "sms_opt_in is true or false: use eq, ne or in, not gt"),
        ("{trait: 'a\".\"b', eq: 1}", "a trait name has 1 to 128 characters, without quotes, backslashes"),
        ("{trait: 'back\\\\slash', exists: true}", "without quotes, backslashes or controls"),
        ("{not: {trait: '', eq: 1}}", "--where:1:2: not: a trait name has 1 to 128 characters"),
        ("{fact: order_count, in: null}", "in: needs a list of values"),
        ("{fact: order_count, eq: 9223372036854775808}", "order_count compares with a number"),
        ("{trait: cups, gt: 9223372036854775808}", "cups compares with text, true/false, a date or a finite"),
        ('{trait: "\\ud800", eq: 1}', "--where:1:9: a NUL or a lone surrogate is not valid text"),
        ("\x1f", "--where:1:1: invalid YAML: unacceptable character #x001f"),
    ],
)
def test_a_where_filter_that_cannot_run_is_refused_with_its_position(where: str, expected: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_filter(where, "--where")
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "where",
    [
        "{fact: order_count, gte: 3}",
        "{fact: lifetime_value, gt: 19.5}",
        "{fact: last_order_at, gte: 2026-03-01}",
        "{fact: last_order_at, lt: '2026-03-01T09:00:00Z'}",
        "{trait: birthday, eq: '1990-02-28'}",
        "{trait: signed_up_at, exists: true}",
        "{trait: email_opt_in, eq: true}",
        "{trait: tier, in: [gold, silver]}",
        "{trait: tier, eq: null}",
        "{trait: cups, gt: 3}",
        "{trait: city, eq: Lyon}",
        "{trait: prénom, eq: Zoé}",
        "{trait: 'a.b', exists: true}",
    ],
)
def test_filters_that_can_run_load(where: str) -> None:
    assert parse_filter(where, "--where") is not None


def test_a_journey_filter_is_checked_where_it_stands() -> None:
    text = HEAD + "audience: {fact: order_count, gt: abc}\n" + STEPS
    journey, problems, _ = parse_journey(text, "f.yaml")
    assert journey is None
    assert problems == ["f.yaml:4:1: audience: gt: order_count compares with a number, not 'abc'"]
    text = HEAD + "steps:\n  - send: {channel: email, template: t, if: {trait: birthday, eq: x}}\n"
    journey, problems, _ = parse_journey(text, "f.yaml")
    assert journey is None
    assert problems == [
        "f.yaml:5:41: steps.0.send.if: eq: birthday compares with an ISO date YYYY-MM-DD, not 'x'"
    ]
