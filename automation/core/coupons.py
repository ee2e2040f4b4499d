"""Coupon codes: pool names, code patterns, import lines, and the empty-pool verdict. Pure.

A pattern spells a code with `#` for a digit and `?` for a letter (A-Z); every
other character is kept as written. The random source is passed in (the CLI
passes `secrets.choice`), so the arithmetic here is testable with a fixed one.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from automation.core.records import RecordError, parse_instant

POOL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$"
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DEFAULT_LOW_WATER = 100
#: Random draws allowed per wanted code before a nearly full pattern is given up on.
DRAWS_PER_CODE = 20


class CouponError(ValueError):
    """A pattern, a file line or a pool name that cannot be used; the message is one line."""


@dataclass(frozen=True)
class Coupon:
    """The code a delivery holds, as its template sees it (`coupon.code`, `coupon.expires_at`)."""

    code: str
    expires_at: dt.datetime | None = None

    def variables(self) -> dict[str, object]:
        return {"code": self.code, "expires_at": self.expires_at}


def empty_reason(pool: str) -> str:
    """Why a delivery whose step names an exhausted pool fails."""
    return f"coupon pool {pool} is empty"


def capacity(pattern: str) -> int:
    """How many distinct codes the pattern can spell."""
    return len(DIGITS) ** pattern.count("#") * len(LETTERS) ** pattern.count("?")


def check_pattern(pattern: str, count: int, existing: int = 0) -> None:
    """Refuse a pattern that cannot spell `count` new codes beside the pool's `existing` ones."""
    if "#" not in pattern and "?" not in pattern:
        raise CouponError(f"pattern {pattern!r} has no # (digit) or ? (letter) to vary")
    if not CODE.match(pattern.replace("#", "0").replace("?", "A")):
        raise CouponError(f"pattern {pattern!r}: a code is letters, digits, '-' and '_', at most 64")
    room = capacity(pattern) - existing
    if count > room:
        raise CouponError(
            f"pattern {pattern!r} spells {capacity(pattern)} codes: too few for {count} new ones"
            + (f" beside the pool's {existing}" if existing else "")
        )


def spell(pattern: str, choice: Callable[[str], str]) -> str:
    """One code of the pattern, each `#` and `?` drawn with `choice`."""
    return "".join(choice(DIGITS) if ch == "#" else choice(LETTERS) if ch == "?" else ch for ch in pattern)


def generate(pattern: str, count: int, taken: set[str], choice: Callable[[str], str]) -> list[str]:
    """`count` codes of the pattern, distinct from each other and from `taken`.

    Raises:
      CouponError: the pattern is too small, or so full that random draws keep colliding.
    """
    check_pattern(pattern, count, len(taken))
    made: list[str] = []
    seen = set(taken)
    for _ in range(count * DRAWS_PER_CODE):
        if len(made) == count:
            break
        code = spell(pattern, choice)
        if code not in seen:
            seen.add(code)
            made.append(code)
    if len(made) < count:
        raise CouponError(f"pattern {pattern!r} is too nearly full: use a longer pattern")
    return made


@dataclass(frozen=True)
class Line:
    """One code read from an import file, with its line number."""

    line: int
    code: str
    expires_at: dt.datetime | None = None


def _header(first: str) -> list[str] | None:
    """The CSV header's column names when the first line is one (it names a `code` column)."""
    names = [name.strip().lower() for name in next(csv.reader([first]), [])]
    return names if "code" in names else None


def read_lines(lines: Sequence[str]) -> tuple[list[Line], list[str]]:
    """The codes of an import file (one a line, or CSV with `code` and optional `expires_at`).

    Returns the codes and the problems, each `LINE: message`; blank lines are ignored.
    """
    header = _header(lines[0]) if lines else None
    rows: Iterable[tuple[int, list[str]]]
    if header is None:
        rows = ((n, [text.strip()]) for n, text in enumerate(lines, 1))
    else:
        rows = ((n, row) for n, row in zip(range(2, len(lines) + 1), csv.reader(lines[1:]), strict=True))
    names = header or ["code"]
    out: list[Line] = []
    problems: list[str] = []
    for n, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        try:
            out.append(_line(n, dict(zip(names, (cell.strip() for cell in row), strict=False))))
        except CouponError as exc:
            problems.append(f"{n}: {exc}")
    return out, problems


def _line(n: int, cells: dict[str, str]) -> Line:
    code = cells.get("code", "")
    if not CODE.match(code):
        raise CouponError(
            "a code is letters, digits, '-' and '_' (at most 64, starting with a letter or digit)"
        )
    expires = cells.get("expires_at") or None
    try:
        return Line(n, code, parse_instant(expires, "expires_at") if expires else None)
    except RecordError as exc:
        raise CouponError(str(exc)) from None


def duplicates(lines: Sequence[Line], existing: set[str]) -> tuple[list[Line], list[Line]]:
    """The lines to add, and those whose code is already in the pool or earlier in the file."""
    seen = set(existing)
    fresh: list[Line] = []
    repeated: list[Line] = []
    for line in lines:
        (repeated if line.code in seen else fresh).append(line)
        seen.add(line.code)
    return fresh, repeated
