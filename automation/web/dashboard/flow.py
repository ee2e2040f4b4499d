"""A journey's steps as a flow to draw: one node per step, with the paths of branching steps. Pure.

The tree is the walker's (`automation.core.walk`): a step kind's child step
lists (a branch's `then`/`else`) are drawn as parallel paths named as in the
file, so new step kinds draw without a change here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from automation.core.durations import format_duration
from automation.core.filters import Filter, describe
from automation.core.journeys import Journey
from automation.core.walk import child_lists


@dataclass
class Node:
    step_id: str
    kind: str
    label: str
    detail: list[str] = field(default_factory=list)
    paths: list[tuple[str, list[Node]]] = field(default_factory=list)


def _label(kind: str, body: Any) -> tuple[str, list[str]]:
    detail: list[str] = []
    condition = getattr(body, "if_", None)
    if isinstance(condition, Filter):
        detail.append(f"only if {describe(condition)}")
    if kind == "send":
        variants = getattr(body, "variants", None) or ()
        detail.extend(f"variant {v.id}: {v.template} (weight {v.weight:g})" for v in variants)
        return f"send {body.channel}: {body.template or 'A/B variants'}", detail
    if kind == "wait":
        delta = body.delta
        return (f"wait {format_duration(delta)}" if delta else f"wait until {body.until:%H:%M} local"), detail
    if kind == "wait_for":
        detail.extend([f"same {', '.join(body.match)} as the trigger"] if body.match else [])
        return f"wait up to {format_duration(body.within)} for {body.event}", detail
    for name, value in body:
        if isinstance(value, Filter) and name != "if_":
            detail.append(f"{name}: {describe(value)}")
        elif isinstance(value, str | int | float) and name != "id":
            detail.append(f"{name}: {value}")
    return kind, detail


def flow(journey: Journey) -> list[Node]:
    """The journey's steps as the walker places them (`automation.core.walk`), child lists as paths."""
    made: dict[str, Node] = {}
    top: list[Node] = []
    for placed in journey.placed.values():
        label, detail = _label(placed.step.kind, placed.step.body)
        paths: list[tuple[str, list[Node]]] = [(name, []) for name, _ in child_lists(placed.step)]
        node = Node(placed.id, placed.step.kind, label, detail, paths)
        made[placed.id] = node
        if placed.parent is None or placed.within is None:
            top.append(node)
        else:
            dict(made[placed.parent].paths)[placed.within].append(node)
    return top
