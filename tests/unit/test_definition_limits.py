"""Journey files and `--where` filters are read defensively: no alias bomb, no FIFO, bounded size."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from automation.campaigns.campaign import CampaignError, parse_where
from automation.definitions.loader import (
    MAX_DEPTH,
    MAX_FILTER_BYTES,
    MAX_JOURNEY_BYTES,
    load_journey_files,
    parse_filter,
)
from automation.errors import DefinitionError

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "journeys" / "post_purchase_thanks.yaml").read_text()
#: 456 bytes that expand to about 10^9 list items when built.
BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(c)}: &{chr(c)} [{','.join(['*' + chr(c - 1)] * 9)}]" for c in range(ord("b"), ord("j"))]
)


def _folder(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "journeys"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_an_alias_bomb_in_a_journey_file_is_refused_at_once(tmp_path: Path) -> None:
    folder = _folder(tmp_path, **{"good.yaml": GOOD, "bomb.yaml": BOMB})
    started = time.monotonic()
    loaded, problems = load_journey_files(folder)
    assert time.monotonic() - started < 2
    assert problems == [f"{folder / 'bomb.yaml'}:1:4: YAML anchors and aliases are not allowed"]
    assert [item.journey.id for item in loaded] == ["post_purchase_thanks"]


def test_an_alias_in_a_where_text_or_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match=r"^--where:1:9: YAML anchors and aliases are not allowed$"):
        parse_where("{trait: &t tier, eq: gold}")
    segment = tmp_path / "segment.yaml"
    segment.write_text("all:\n  - &x {trait: tier, eq: gold}\n  - *x\n")
    with pytest.raises(CampaignError, match=rf"^{segment}:2:5: YAML anchors and aliases are not allowed$"):
        parse_where(str(segment))
    segment.write_text(BOMB)
    with pytest.raises(CampaignError, match="anchors and aliases"):
        parse_where(str(segment))


def test_oversized_definitions_are_refused_without_reading_them_whole(tmp_path: Path) -> None:
    folder = _folder(tmp_path, **{"big.yaml": GOOD + "#" * MAX_JOURNEY_BYTES})
    _, problems = load_journey_files(folder)
    assert problems == [f"{folder / 'big.yaml'}:1:1: larger than 256 KiB"]
    segment = tmp_path / "segment.yaml"
    segment.write_text("{trait: tier, eq: gold}\n" + "#" * MAX_FILTER_BYTES)
    with pytest.raises(CampaignError, match=rf"^{segment}:1:1: larger than 64 KiB$"):
        parse_where(str(segment))
    with pytest.raises(DefinitionError, match=r"^--where:1:1: larger than 64 KiB$"):
        parse_filter("{trait: tier, eq: gold}" + " " * MAX_FILTER_BYTES, "--where")


def test_deep_nesting_is_refused_before_it_is_built() -> None:
    deep = "{not: " * (MAX_DEPTH + 1) + "{trait: tier, eq: gold}" + "}" * (MAX_DEPTH + 1)
    with pytest.raises(DefinitionError, match=rf"^--where:1:\d+: nested deeper than {MAX_DEPTH} levels$"):
        parse_filter(deep, "--where")
    very_deep = "[" * 60_000
    with pytest.raises(DefinitionError, match="nested deeper than"):
        parse_filter(very_deep, "--where")


def test_a_fifo_named_yaml_is_reported_not_opened(tmp_path: Path) -> None:
    folder = _folder(tmp_path, **{"good.yaml": GOOD})
    os.mkfifo(folder / "pipe.yaml")
    loaded, problems = load_journey_files(folder)
    assert problems == [f"{folder / 'pipe.yaml'}:1:1: not a regular file"]
    assert len(loaded) == 1
    with pytest.raises(CampaignError, match=r"pipe.yaml:1:1: not a regular file$"):
        parse_where(str(folder / "pipe.yaml"))


def test_a_journey_file_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    folder = tmp_path / "journeys"
    folder.mkdir()
    (folder / "latin.yaml").write_bytes(GOOD.encode() + b"# caf\xe9\n")
    _, problems = load_journey_files(folder)
    assert problems == [f"{folder / 'latin.yaml'}:{GOOD.count(chr(10)) + 1}:1: not UTF-8 text"]


def test_a_bad_date_in_yaml_is_a_positioned_problem_not_a_crash(tmp_path: Path) -> None:
    folder = _folder(tmp_path, **{"j.yaml": GOOD + "description: 2026-02-30\n"})
    _, problems = load_journey_files(folder)
    line = GOOD.count("\n") + 1
    assert problems == [
        f"{folder / 'j.yaml'}:{line}:14: not a valid date or time: day is out of range for month"
    ]


@pytest.mark.parametrize(
    ("wait", "problem"),
    [
        ("{days: 3000000}", "steps.0.wait.days: Input should be less than or equal to 3660"),
        ("{hours: 100000}", "steps.0.wait.hours: Input should be less than or equal to 87840"),
        (
            "{duration: 99999999999999d}",
            "steps.0.wait.duration: bad duration '99999999999999d': at most 3660d",
        ),
    ],
)
def test_a_wait_past_ten_years_is_refused_where_it_is_written(
    tmp_path: Path, wait: str, problem: str
) -> None:
    """Before, it validated and then overflowed the calendar in every tick that reached it."""
    journey = GOOD.replace("steps:\n", f"steps:\n  - wait: {wait}\n", 1)
    folder = _folder(tmp_path, **{"long.yaml": journey})
    loaded, [message] = load_journey_files(folder)
    assert not loaded
    line = GOOD.splitlines().index("steps:") + 2  # the wait is the first step
    assert problem in message and message.startswith(f"{folder / 'long.yaml'}:{line}:")
