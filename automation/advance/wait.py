"""Step kind `wait`: a duration, or until the next local time of day in the customer's zone.

A wait counts from the instant the step was reached, not from when a tick
happened to run, so a late tick never stretches a journey.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from automation.advance.step import Outcome, StepKind
from automation.core.durations import format_duration
from automation.core.journeys import WaitStep
from automation.core.planner import next_local_time


class WaitKind(StepKind[WaitStep]):
    name = "wait"
    model = WaitStep

    def run(self, step_id: str, body: WaitStep, at: dt.datetime, now: dt.datetime, tz: ZoneInfo) -> Outcome:
        if body.delta is not None:
            return Outcome(at + body.delta)
        assert body.until is not None  # a wait has exactly one form
        return Outcome(next_local_time(at, body.until, tz))

    def waits_for(self, body: WaitStep, context: Mapping[str, Any]) -> str:
        if body.delta is not None:
            return f"to start waiting {format_duration(body.delta)}"
        assert body.until is not None
        return f"to start waiting until {body.until:%H:%M}"


KIND = WaitKind()
