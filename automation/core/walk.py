"""The one walker over a journey's nested step tree. Pure.

A step kind whose settings hold lists of steps (a `branch`'s `then`/`else`, a
`wait_for`'s `happened`/`timed_out`) names those fields in its model's
`children`, or says where its lists are in `child_lists`; the walker knows
nothing else about kinds. Every consumer that
enumerates steps, their ids, their positions in the file or what follows a
step reads this one table instead of walking the lists itself.

Ids: a step's own `id`, else `step-N` at the top level and `PARENT.LIST-N`
inside a child list (`step-2.then-1`). What follows a step is the next step of
its own list, else whatever follows the step that holds the list, so a branch
that ends rejoins the steps after it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automation.core.journeys import Step


@dataclass(frozen=True)
class Placed:
    """One step where it stands in the tree."""

    id: str
    step: Step
    #: The YAML path to the step's kind mapping, e.g. ("steps", 1, "branch", "then", 0, "send").
    loc: tuple[Any, ...]
    #: The position a person reads: "2", "2.then.1".
    number: str
    #: The id of the step that runs after this one (None: the journey ends there).
    after: str | None
    #: The id of the step that holds this one's list, and that list's name (None at the top level).
    parent: str | None = None
    within: str | None = None
    #: For each child list (by its YAML name): the step it starts with, or what follows this step if empty.
    starts: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Choice:
    """How an enrollment goes on from a judged step: its child list `path` from instant `at`.

    `path` None: no way chosen yet (a `wait_for` before its event or deadline); the
    enrollment stays parked at the step until `at`.
    """

    path: str | None
    at: dt.datetime


def child_lists(step: Step) -> list[tuple[str, Sequence[Step]]]:
    """The child step lists of a step, each with its name, in declaration order."""
    return [(name, steps) for name, _, steps in step.body.child_lists()]


def walk(steps: Sequence[Step]) -> list[Placed]:
    """Every step of the tree, depth first in file order (a parent before its children)."""
    return list(_walk(steps, ("steps",), "", None, None, None, None))


def _walk(
    steps: Sequence[Step],
    loc: tuple[Any, ...],
    prefix: str,
    id_prefix: str | None,
    after: str | None,
    parent: str | None,
    within: str | None,
) -> Iterator[Placed]:
    ids = [s.body.id or _default_id(id_prefix, n) for n, s in enumerate(steps, 1)]
    for n, (sid, step) in enumerate(zip(ids, steps, strict=True)):
        follows = ids[n + 1] if n + 1 < len(ids) else after
        here = (*loc, n, step.kind)
        number = f"{prefix}{n + 1}"
        lists = step.body.child_lists()
        starts = {name: _first(children, sid, name) or follows for name, _, children in lists}
        yield Placed(sid, step, here, number, follows, parent, within, starts)
        for name, suffix, children in lists:
            nested = (*here, *suffix)
            yield from _walk(children, nested, f"{number}.{name}.", f"{sid}.{name}", follows, sid, name)


def _default_id(id_prefix: str | None, n: int) -> str:
    return f"step-{n}" if id_prefix is None else f"{id_prefix}-{n}"


def _first(children: Sequence[Step], parent: str, name: str) -> str | None:
    if not children:
        return None
    return children[0].body.id or _default_id(f"{parent}.{name}", 1)
