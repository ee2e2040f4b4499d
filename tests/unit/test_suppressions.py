"""Suppression addresses and the import file forms. Pure."""

from __future__ import annotations

import pytest

from automation.core import addresses
from automation.store import suppressions
from automation.store.suppressions import Entry


@pytest.mark.parametrize(
    ("channel", "address", "expected"),
    [
        ("email", "  Ada@Example.COM ", "ada@example.com"),
        ("sms", "+1 (555) 010-0200", "+15550100200"),
        ("sms", "+33.6.12.34.56.78", "+33612345678"),
    ],
)
def test_normal_forms(channel: str, address: str, expected: str) -> None:
    assert addresses.normalize(channel, address) == expected


@pytest.mark.parametrize(
    ("channel", "address", "message"),
    [
        ("email", "not-an-email", "is not an email address"),
        ("sms", "5550100", "E.164"),
        ("fax", "+15550100200", "unknown channel"),
    ],
)
def test_bad_addresses(channel: str, address: str, message: str) -> None:
    with pytest.raises(addresses.AddressError, match=message):
        addresses.normalize(channel, address)


def test_plain_list_infers_the_channel_and_reports_bad_lines() -> None:
    lines = ["# exported from the old tool", "ada@example.com", "", "+15550100200", "nonsense"]
    entries, problems = suppressions.parse_import(lines, "import")
    assert entries == [Entry("email", "ada@example.com", "import"), Entry("sms", "+15550100200", "import")]
    assert problems == ["5: 'nonsense' is not a phone number in E.164 form, like +15551234567"]


def test_csv_with_header() -> None:
    lines = ["address,channel,reason", "BOB@example.com,email,bounce", "+15550100201,,", "x@y,sms,stop"]
    entries, problems = suppressions.parse_import(lines, "import")
    assert entries == [Entry("email", "bob@example.com", "bounce"), Entry("sms", "+15550100201", "import")]
    assert problems == ["4: 'x@y' is not a phone number in E.164 form, like +15551234567"]
