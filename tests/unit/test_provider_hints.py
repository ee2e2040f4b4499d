"""How long a provider asked us to wait, read from its answer's headers."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from automation.providers.hints import retry_after_s


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, None),
        ({}, None),
        ({"Retry-After": "4"}, 4.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"Retry-After": "-3"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "nan"}, None),
        ({"X-RateLimit-Reset": "not a number"}, None),
    ],
)
def test_retry_after_in_seconds(headers: dict[str, str] | None, expected: float | None) -> None:
    assert retry_after_s(headers) == expected


def test_retry_after_as_an_http_date_and_a_rate_limit_reset() -> None:
    in_ten = retry_after_s({"Retry-After": formatdate(time.time() + 10, usegmt=True)})
    assert in_ten is not None and 8 <= in_ten <= 10
    assert retry_after_s({"Retry-After": formatdate(time.time() - 60, usegmt=True)}) == 0.0
    reset = retry_after_s({"X-RateLimit-Reset": str(int(time.time()) + 5)})
    assert reset is not None and 3 <= reset <= 5
