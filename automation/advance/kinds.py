"""The registry of step kinds: the walk looks each step's kind up in this one table.

Adding a kind is one module beside these (a `StepKind` subclass and its
`KIND`), its line below, and its settings model as a field of `Step` in the
journey schema. A kind that holds steps of its own names their fields in its
model's `children`: the walker (`automation.core.walk`) does the rest.
"""

from __future__ import annotations

from typing import Any

from automation.advance import branch, send, split, wait, wait_for
from automation.advance.step import StepKind
from automation.core.journeys import Step

KINDS: dict[str, StepKind[Any]] = {
    k.name: k for k in (send.KIND, wait.KIND, branch.KIND, split.KIND, wait_for.KIND)
}


def kind_of(step: Step) -> StepKind[Any]:
    """The kind of a journey step."""
    return KINDS[step.kind]
