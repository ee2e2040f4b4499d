"""One normal form for email and phone: ingest and the suppression list make the same one. Pure."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from automation.core import addresses
from automation.core.records import RecordError, parse_record
from automation.store.suppressions import parse_import

NOW = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)


def ingested(**traits: object) -> dict[str, object]:
    record = parse_record(json.dumps({"type": "identify", "customer_id": "c1", "traits": traits}), NOW)
    return dict(record.traits)


@pytest.mark.parametrize(
    ("channel", "written", "typed"),
    [
        ("email", " Ada@Example.COM ", "ada@EXAMPLE.com"),
        ("sms", "+1 (555) 010-0200", "+1.555.010.0200"),
        ("sms", "+33 6 12 34 56 78", "+33-6-12-34-56-78"),
    ],
)
def test_ingest_and_the_suppression_list_keep_an_address_in_one_form(
    channel: str, written: str, typed: str
) -> None:
    trait = "email" if channel == "email" else "phone"
    stored = ingested(**{trait: written})[trait]
    assert stored == addresses.normalize(channel, typed)
    [entry], problems = parse_import([typed], "manual")
    assert problems == [] and (entry.channel, entry.address) == (channel, stored)


@pytest.mark.parametrize(
    ("traits", "reason"),
    [
        ({"email": "ada at example.com"}, "traits.email is not an email address"),
        ({"email": "ada @example.com"}, "traits.email is not an email address"),
        ({"email": 42}, "traits.email is not an email address"),
        ({"phone": "555 0100"}, "traits.phone must be in E.164 form, like +15551234567"),
    ],
)
def test_ingest_refuses_what_is_not_an_address_without_echoing_it(traits: dict, reason: str) -> None:
    with pytest.raises(RecordError) as caught:
        ingested(**traits)
    assert str(caught.value) == reason
