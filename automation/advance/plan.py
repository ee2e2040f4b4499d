"""The walk over a journey's steps for one enrollment at `now`. Pure.

Nothing here reads the clock or touches the database: the same walk serves
every enrollment of a batch that shares a journey, a step, an instant and a
zone, and each rule is tested with a table of fixed times. The walk follows
the step tree (`Journey.placed`): a step's `after` is the next to run, and a
judged step (a branch) stops the walk until the batch has chosen its path.
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
    """What running an enrollment's due steps produced at `now`.

    `judged`: the walk stopped at `next_step_id`, reached at `next_at` (not after
    `now`), whose kind chooses the path per enrollment.
    """

    sends: list[PlannedSend] = field(default_factory=list)
    next_step_id: str | None = None
    next_at: dt.datetime | None = None
    judged: bool = False

    @property
    def completed(self) -> bool:
        """No step is left to run (the enrollment ends once its messages are settled)."""
        return self.next_step_id is None


def advance(
    journey: Journey,
    step_id: str,
    scheduled_at: dt.datetime,
    now: dt.datetime,
    tz: ZoneInfo,
    chosen: str | None = None,
) -> Advance:
    """Run steps from `step_id` (reached at `scheduled_at`) until one's next instant lies in the future.

    With `chosen`, `step_id` is a judged step already decided: the walk goes on
    with its child list of that name. A step id that no longer exists (the
    journey was edited) ends the walk without sending anything more.
    """
    placed = journey.placed
    here = placed.get(step_id)
    if here is None:
        return Advance()
    sends: list[PlannedSend] = []
    at = scheduled_at
    next_id = here.starts.get(chosen, here.after) if chosen is not None else step_id
    while next_id is not None:
        step = placed[next_id]
        outcome = kind_of(step.step).run(next_id, step.step.body, at, now, tz)
        if outcome.judged:
            return Advance(sends, next_id, at, judged=True)
        sends.extend(outcome.sends)
        at = outcome.at
        next_id = step.after
        if at > now:
            return Advance(sends, next_id, at) if next_id is not None else Advance(sends)
    return Advance(sends)
