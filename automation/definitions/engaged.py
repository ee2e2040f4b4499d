"""Where an engagement condition may stand, and which steps it may name.

`{step: ID, opened: true}` is about an earlier send of the same enrollment, so
it belongs only in a `branch`'s `if` or a send's `if`, and names a send step
that comes before it in the journey (depth first, in file order). Anywhere
else (an audience, a campaign's `--where`) it is an error at its position.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from automation.core.filters import Filter
from automation.core.journeys import Journey

#: The step kinds whose `if` may ask about earlier sends.
ENGAGED_IN = ("branch", "send")
NOT_HERE = "an engagement condition ({step: ID, ...}) is allowed only in a branch's or a send's `if`"


def problems(journey: Journey, loc: tuple[Any, ...], f: Filter) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(YAML path, message) for each engagement condition of filter `f` at `loc` that may not stand there."""
    owner = _owner(journey, loc)
    earlier = _earlier_sends(journey, owner) if owner is not None else set()
    for path, node in f.nodes(loc):
        if node.engagement is None:
            continue
        if owner is None:
            yield path, NOT_HERE
        elif (named := node.engagement[0]) not in earlier:
            known = ", ".join(sorted(earlier)) or "none"
            yield (*path, "step"), f"step {named!r} is not an earlier send step (earlier: {known})"


def anywhere(f: Filter, loc: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every engagement condition of a filter that stands outside any journey step."""
    return ((path, NOT_HERE) for path, node in f.nodes(loc) if node.engagement is not None)


def _owner(journey: Journey, loc: tuple[Any, ...]) -> str | None:
    """The id of the branch or send step whose `if` is at `loc`, else None."""
    if len(loc) < 2 or loc[-1] != "if" or loc[-2] not in ENGAGED_IN:
        return None
    return next((p.id for p in journey.placed.values() if p.loc == loc[:-1]), None)


def _earlier_sends(journey: Journey, step_id: str) -> set[str]:
    ids = journey.step_ids()
    before = ids[: ids.index(step_id)]
    return {sid for sid in before if journey.placed[sid].step.send is not None}
