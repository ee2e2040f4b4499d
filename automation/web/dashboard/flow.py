"""A journey's steps as a flow to draw: one node per step, with the paths of branching steps. Pure.

Step kinds are read from the journey model rather than listed here: a step's
kind is its one set field; a field of the step that holds a list of steps (a
branch's `then`/`else`) or of paths with steps (a split's weighted paths) is
drawn as parallel paths, so new step kinds draw without a change here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from automation.core.durations import format_duration
from automation.core.filters import Filter, describe
from automation.core.journeys import Journey


@dataclass
class Node:
    step_id: str
    kind: str
    label: str
    detail: list[str] = field(default_factory=list)
    paths: list[tuple[str, list[Node]]] = field(default_factory=list)


def _kind(step: BaseModel) -> tuple[str, Any]:
    for name in type(step).model_fields:
        value = getattr(step, name)
        if value is not None:
            return name, value
    raise ValueError("a step without a kind")


def _is_steps(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, BaseModel) for v in value)


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
    for name, value in body:
        if isinstance(value, Filter) and name != "if_":
            detail.append(f"{name}: {describe(value)}")
        elif isinstance(value, str | int | float) and name != "id":
            detail.append(f"{name}: {value}")
    return kind, detail


def _paths(body: Any, prefix: str) -> list[tuple[str, list[Node]]]:
    out: list[tuple[str, list[Node]]] = []
    for name, value in body:
        if not _is_steps(value):
            continue
        if all(_is_kind_step(v) for v in value):
            out.append((name.rstrip("_"), nodes(value, f"{prefix}.{name}")))
            continue
        for n, path in enumerate(value, 1):
            steps = getattr(path, "steps", None)
            if isinstance(steps, list) and _is_steps(steps):
                title = getattr(path, "name", None) or getattr(path, "id", None) or f"path {n}"
                weight = getattr(path, "weight", None)
                label = f"{title} ({weight})" if weight is not None else str(title)
                out.append((label, nodes(steps, f"{prefix}.{name}.{n}")))
    return out


def _fields(model: BaseModel) -> list[str]:
    return [k for k in type(model).model_fields if getattr(model, k) is not None]


def _is_kind_step(model: BaseModel) -> bool:
    """A step wrapper: exactly one set field, itself a model (`send: {...}`)."""
    set_fields = _fields(model)
    return len(set_fields) == 1 and isinstance(getattr(model, set_fields[0]), BaseModel)


def nodes(steps: list[Any], prefix: str = "step") -> list[Node]:
    out = []
    for n, step in enumerate(steps, 1):
        kind, body = _kind(step)
        label, detail = _label(kind, body)
        step_id = getattr(body, "id", None) or f"{prefix}-{n}"
        out.append(Node(step_id, kind, label, detail, _paths(body, step_id)))
    return out


def flow(journey: Journey) -> list[Node]:
    """The journey's top-level steps, with their ids as the tick names them."""
    top = nodes(journey.steps)
    for node, step_id in zip(top, journey.step_ids(), strict=True):
        node.step_id = step_id
    return top
