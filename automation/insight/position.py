"""Where an enrollment stands in its journey, in words: the step, what it waits for, until when.

Each step kind says what an enrollment parked at it waits for
(`StepKind.waits_for`), so a new kind (one that holds an enrollment until an
event or its deadline) describes itself here without a switch on kinds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automation.advance.kinds import kind_of
from automation.core.journeys import Journey


def position(
    journey: Journey | None, step_id: str | None, context: Mapping[str, Any] | None = None
) -> tuple[str | None, str | None]:
    """(the step as people read it, "3 ordered-yet"; what the enrollment waits for there).

    None for either when the enrollment has no step left (its last messages are
    still settling) or the step is no longer in the journey's file. `context` is
    the enrollment's (a `wait_for` names the values it matches on).
    """
    if step_id is None:
        return None, "its last messages to settle"
    placed = journey.placed.get(step_id) if journey is not None else None
    if placed is None:
        return step_id, None
    return f"{placed.number} {step_id}", kind_of(placed.step).waits_for(placed.step.body, context or {})
