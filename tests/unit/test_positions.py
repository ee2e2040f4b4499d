"""Where an enrollment stands, in words: each step kind says what waits at it."""

from __future__ import annotations

import pytest

from automation.definitions.loader import parse_journey
from automation.insight.position import position

JOURNEY = """id: j
name: J
trigger: {event: {name: e}}
steps:
  - wait: {days: 2}
  - send: {id: hello, channel: email, template: t}
  - wait: {id: morning, until: "09:00"}
  - branch:
      id: opened
      if: {step: hello, opened: false}
      then:
        - send: {id: again, channel: email, variants: [{id: a, template: t, weight: 1}, {id: b, template: u, weight: 1}]}
  - split:
      id: coin
      paths: [{id: heads, weight: 1}, {id: tails, weight: 1}]
"""


@pytest.mark.parametrize(
    ("step_id", "shown", "waits_for"),
    [
        ("step-1", "1 step-1", "to start waiting 2d"),
        ("hello", "2 hello", "to send email t"),
        ("morning", "3 morning", "to start waiting until 09:00"),
        ("opened", "4 opened", "to branch on step hello not opened"),
        ("again", "4.then.1 again", "to send email t or u"),
        ("coin", "5 coin", "to take one of the paths heads, tails"),
        ("gone", "gone", None),  # a step since removed from the file
        (None, None, "its last messages to settle"),
    ],
)
def test_each_step_kind_says_what_an_enrollment_waits_for_there(
    step_id: str | None, shown: str | None, waits_for: str | None
) -> None:
    journey, problems, _ = parse_journey(JOURNEY, "j.yaml")
    assert journey is not None, problems
    assert position(journey, step_id) == (shown, waits_for)


def test_a_journey_no_longer_in_the_folder_still_names_the_step() -> None:
    assert position(None, "hello") == ("hello", None)
