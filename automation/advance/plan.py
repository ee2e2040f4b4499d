"""The walk over a journey's steps for one enrollment at `now`. Pure.

Nothing here reads the clock or touches the database: the same walk serves
every enrollment of a batch that shares a journey, a step, an instant and a
zone, and each rule is tested with a table of fixed times.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from automation.advance.kinds import kind_of
from automation.advance.step import PlannedSend
from automation.core.journeys import Journey


@dataclass(frozen=True)
class Advance:
    """What running an enrollment's due steps produced at `now`."""

    sends: list[PlannedSend] = field(default_factory=list)
    next_step_id: str | None = None
    next_at: dt.datetime | None = None

    @property
    def completed(self) -> bool:
        """No step is left to run (the enrollment ends once its messages are settled)."""
        return self.next_step_id is None


def advance(
    journey: Journey, step_id: str, scheduled_at: dt.datetime, now: dt.datetime, tz: ZoneInfo
) -> Advance:
    """Run steps from `step_id` (reached at `scheduled_at`) until one's next instant lies in the future.

    A step id that no longer exists (the journey was edited) ends the walk
    without sending anything more.
    """
    ids = journey.step_ids()
    index = journey.step_index(step_id)
    if index is None:
        return Advance()
    sends: list[PlannedSend] = []
    at = scheduled_at
    while index < len(ids):
        step = journey.steps[index]
        outcome = kind_of(step).run(ids[index], step.body, at, now, tz)
        sends.extend(outcome.sends)
        at = outcome.at
        index += 1
        if at > now:
            return Advance(sends, ids[index], at) if index < len(ids) else Advance(sends)
    return Advance(sends)
