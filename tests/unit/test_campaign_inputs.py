"""Campaign inputs: rates, masking, filters from YAML text or a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from automation.campaigns.campaign import CampaignError, mask_email, parse_rate, parse_where


@pytest.mark.parametrize(
    ("text", "per_s"),
    [("50/s", 50.0), ("50", 50.0), ("3000/m", 50.0), (" 7200 /h", 2.0), ("0.5/s", 0.5)],
)
def test_rates(text: str, per_s: float) -> None:
    assert parse_rate(text) == per_s


@pytest.mark.parametrize(
    ("text", "message"), [("fast", "is not a rate"), ("0/s", "above zero"), ("-3", "above zero")]
)
def test_bad_rates(text: str, message: str) -> None:
    with pytest.raises(CampaignError, match=message):
        parse_rate(text)


@pytest.mark.parametrize(
    ("address", "masked"),
    [("ada@example.com", "a***@example.com"), (None, "-"), ("", "-"), ("not-an-email", "-")],
)
def test_masking(address: str | None, masked: str) -> None:
    assert mask_email(address) == masked


def test_filters_from_text_and_file(tmp_path: Path) -> None:
    assert parse_where("{trait: tier, in: [gold, platinum]}").in_ == ["gold", "platinum"]
    segment = tmp_path / "segment.yaml"
    segment.write_text(
        "all:\n  - {fact: order_count, gte: 3}\n  - {trait: email_opt_in, eq: true}\n", encoding="utf-8"
    )
    assert parse_where(str(segment)).all is not None
    with pytest.raises(CampaignError, match=r"^--where missing.yaml: no such file"):
        parse_where("missing.yaml")
    with pytest.raises(CampaignError, match=r"^--where:1:1: a filter is a mapping"):
        parse_where("- just a list")
    segment.write_text("all:\n  - {fact: orders, gte: 3}\n", encoding="utf-8")
    with pytest.raises(CampaignError, match=rf"^{segment}:2:5: all.0: unknown fact 'orders'"):
        parse_where(str(segment))
