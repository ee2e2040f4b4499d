"""Record parsing, pure: every hostile value is a RecordError with a reason, never another exception."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from automation.core.records import RecordError, parse_record
from automation.core.segment import parse_call

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def identify(**traits: object) -> str:
    return json.dumps({"type": "identify", "customer_id": "c1", "traits": traits})


def order(total: object) -> str:
    record = {"type": "track", "customer_id": "c1", "event": "order_placed", "timestamp": "2026-01-01"}
    return json.dumps({**record, "properties": {"total": total}})


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("[" * 100_000, "nested deeper than 32 levels"),
        ('{"type": "identify", "customer_id": "c1", "traits": {"n": ' + "1" * 4301 + "}}", "too many digits"),
        ('{"type": "identify", "customer_id": "c1", "n": Infinity}', "Infinity is not a number JSON allows"),
        (
            json.dumps({"type": "identify", "customer_id": "c1", "timestamp": "9999-12-31T23:59:59-01:00"}),
            "out of range",
        ),
        ('{"type": "identify", "customer_id": "c\\ud83d"}', "lone surrogate"),
        ('{"type": "identify", "customer_id": "c\\u0000"}', "NUL character"),
        ('{"type": "identify", "customer_id": "c\\u001b[2J"}', "customer_id holds a control character"),
        (identify(email="@"), "traits.email is not an email address"),
        (identify(email="a@b"), "traits.email is not an email address"),
        (identify(email="ada@example.com\r\nBcc: eve@example.com"), "traits.email holds a control character"),
        (identify(phone="+١٥٥٥١٢٣٤٥٦٧"), "E.164"),
        (identify(phone="+¹⁵⁵⁵¹²³⁴⁵⁶⁷"), "E.164"),
        (identify(phone="+0155512345"), "E.164"),
        (identify(first_name="Ada\nLovelace"), "traits.first_name holds a control character"),
        (identify(last_name="Love\u2029lace"), "traits.last_name holds a control character"),
        (order("NaN"), "properties.total must be an amount"),
        (order("Infinity"), "properties.total must be an amount"),
        (order(True), "properties.total must be an amount"),
        (order("1" + "0" * 28), "properties.total must be an amount"),
        (order(1e300), "properties.total must be an amount"),
    ],
)
def test_hostile_values_are_one_reason(line: str, reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        parse_record(line, NOW)


@pytest.mark.parametrize(
    "line",
    [
        identify(email=" Ada@Example.COM ", phone="+44 20-7946-0958", first_name="Zoé", last_name="Ō'Brien"),
        identify(nested={"a": [[[[1]]]]}, big=10**40),
        order("42.50"),
        order(-12.5),
        order(999_999_999_999.99),
    ],
)
def test_ordinary_values_still_parse(line: str) -> None:
    parse_record(line, NOW)


def test_the_tracking_api_applies_the_same_checks() -> None:
    with pytest.raises(RecordError, match=r"properties\.total must be an amount"):
        parse_call("track", {"userId": "c1", "event": "order_placed", "properties": {"total": "NaN"}}, NOW)
    with pytest.raises(RecordError, match=r"traits\.email holds a control character"):
        parse_call("identify", {"userId": "c1", "traits": {"email": "a@b.co\r\nX: y"}}, NOW)
