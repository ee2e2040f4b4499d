"""Coupon patterns and import files, with a fixed random source."""

from __future__ import annotations

import itertools
import re

import pytest

from automation.core import coupons


def cycling(values: str) -> object:
    it = itertools.cycle(values)
    return lambda alphabet: next(c for c in it if c in alphabet)


def test_a_pattern_spells_digits_and_letters_and_keeps_the_rest() -> None:
    assert coupons.spell("WELCOME-####-????", cycling("1234ABCD")) == "WELCOME-1234-ABCD"
    assert coupons.capacity("WELCOME-####-????") == 10**4 * 26**4


def test_generated_codes_are_distinct_and_avoid_the_pools_codes() -> None:
    made = coupons.generate("X-#", 9, {"X-0"}, cycling("0123456789"))
    assert sorted(made) == [f"X-{n}" for n in range(1, 10)]


@pytest.mark.parametrize(
    ("pattern", "count", "taken", "message"),
    [
        ("X-#", 11, set(), "spells 10 codes: too few for 11 new ones"),
        ("X-#", 10, {"X-1"}, "too few for 10 new ones beside the pool's 1"),
        ("FIXED", 1, set(), "has no # (digit) or ? (letter) to vary"),
        ("BAD CODE-#", 1, set(), "a code is letters, digits"),
    ],
)
def test_a_pattern_too_small_or_malformed_is_refused(
    pattern: str, count: int, taken: set[str], message: str
) -> None:
    with pytest.raises(coupons.CouponError, match=re.escape(message)):
        coupons.generate(pattern, count, taken, cycling("0123456789ABC"))


def test_an_import_file_is_one_code_a_line_or_csv_with_expiry() -> None:
    plain, problems = coupons.read_lines(["A-1", "", "A-2", "bad code"])
    assert [(line.line, line.code) for line in plain] == [(1, "A-1"), (3, "A-2")]
    assert problems == [
        "4: a code is letters, digits, '-' and '_' (at most 64, starting with a letter or digit)"
    ]
    rows, problems = coupons.read_lines(["expires_at,code", "2027-01-31,B-1", ",B-2", "soon,B-3"])
    assert [(r.code, r.expires_at.isoformat() if r.expires_at else None) for r in rows] == [
        ("B-1", "2027-01-31T00:00:00+00:00"),
        ("B-2", None),
    ]
    assert problems == ["4: expires_at is not ISO 8601"]


def test_duplicates_within_the_file_and_the_pool_are_set_apart() -> None:
    lines = [coupons.Line(1, "A"), coupons.Line(2, "B"), coupons.Line(3, "A"), coupons.Line(4, "C")]
    fresh, repeated = coupons.duplicates(lines, {"C"})
    assert [x.line for x in fresh] == [1, 2] and [x.line for x in repeated] == [3, 4]
