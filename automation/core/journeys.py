"""Journey definitions: the pydantic models and the YAML loader.

Loading keeps line and column for every key (ruamel.yaml round-trip), so that
any problem, from YAML syntax to an unknown key or a bad duration, is reported
as `file:line:column: message`. Pure: reads files, touches nothing else.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.functional_validators import BeforeValidator
from pydantic.json_schema import WithJsonSchema
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from automation.core.durations import format_duration, parse_duration, parse_time_of_day
from automation.core.filters import Filter
from automation.core.statuses import Channel


def _duration(value: Any) -> dt.timedelta:
    if isinstance(value, dt.timedelta):
        return value
    return parse_duration(str(value))


def _time_of_day(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value
    return parse_time_of_day(str(value))


Duration = Annotated[
    dt.timedelta,
    BeforeValidator(_duration),
    WithJsonSchema({"type": "string", "pattern": r"^(\d+[smhdw])+$", "examples": ["90m", "2h", "7d"]}),
]
TimeOfDay = Annotated[
    dt.time,
    BeforeValidator(_time_of_day),
    WithJsonSchema({"type": "string", "pattern": r"^([01]?\d|2[0-3]):[0-5]\d$", "examples": ["09:00"]}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class EventTrigger(_Strict):
    """Each occurrence of a named event enters the journey."""

    name: str = Field(description="Event name, e.g. order_placed.")
    lookback: Duration = Field(dt.timedelta(days=3), description="Older events never enter.")
    where: dict[str, Any] | None = Field(None, description="Event properties that must match.")


class AnniversaryTrigger(_Strict):
    """The yearly return of a date trait, at a local time of day in the customer's zone."""

    trait: str = Field(description="A date trait: signed_up_at, birthday or a custom one.")
    at: TimeOfDay = Field(dt.time(9, 0), description="Local time of day, HH:MM.")
    min_years: int | None = Field(
        None,
        ge=0,
        description="First anniversary to celebrate; default 0 for `birthday`, 1 for any other trait.",
    )
    lookback: Duration = Field(
        dt.timedelta(days=1), description="A missed moment older than this is skipped."
    )

    def first_year(self) -> int:
        if self.min_years is not None:
            return self.min_years
        return 0 if self.trait == "birthday" else 1


class InactivityTrigger(_Strict):
    """No given event for N days since the last one (customers who never had it are not inactive)."""

    event: str = Field(description="The event whose absence counts, e.g. order_placed.")
    days: int = Field(gt=0)
    lookback: Duration = Field(dt.timedelta(days=3), description="Lapses older than this never enter.")


class TierChangeTrigger(_Strict):
    """A change of the `tier` trait, to given tiers and/or in a direction."""

    to: list[str] | None = Field(None, description="Enter only when the new tier is one of these.")
    direction: Literal["up", "down", "any"] = "any"
    lookback: Duration = Field(dt.timedelta(days=3))


class ManualTrigger(_Strict):
    """Nobody enters except through `automation campaign send`."""


class Trigger(_Strict):
    """Exactly one trigger kind."""

    event: EventTrigger | None = None
    anniversary: AnniversaryTrigger | None = None
    inactivity: InactivityTrigger | None = None
    tier_change: TierChangeTrigger | None = None
    manual: ManualTrigger | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_manual(cls, value: Any) -> Any:
        if value == "manual":
            return {"manual": {}}
        if isinstance(value, dict) and "manual" in value and value["manual"] is None:
            return {**value, "manual": {}}
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Trigger:
        kinds = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "a trigger has exactly one kind: event, anniversary, inactivity, tier_change or manual"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)

    def body(
        self,
    ) -> EventTrigger | AnniversaryTrigger | InactivityTrigger | TierChangeTrigger | ManualTrigger:
        return getattr(self, self.kind)


class SendStep(_Strict):
    """Send one message on a channel from a template."""

    id: str | None = Field(None, description="Stable step id; defaults to step-N.")
    channel: Channel
    template: str
    if_: Filter | None = Field(None, alias="if", description="Checked at the moment of sending.")


class WaitStep(_Strict):
    """Wait for a duration, or until a local time of day."""

    id: str | None = None
    duration: Duration | None = None
    minutes: int | None = Field(None, gt=0)
    hours: int | None = Field(None, gt=0)
    days: int | None = Field(None, gt=0)
    until: TimeOfDay | None = Field(None, description="Next local HH:MM in the customer's zone.")

    @model_validator(mode="after")
    def _one_form(self) -> WaitStep:
        forms = [k for k in ("duration", "minutes", "hours", "days", "until") if getattr(self, k)]
        if len(forms) != 1:
            raise ValueError("a wait has exactly one of: duration, minutes, hours, days, until")
        return self

    @property
    def delta(self) -> dt.timedelta | None:
        if self.duration:
            return self.duration
        if self.minutes:
            return dt.timedelta(minutes=self.minutes)
        if self.hours:
            return dt.timedelta(hours=self.hours)
        if self.days:
            return dt.timedelta(days=self.days)
        return None


class Step(_Strict):
    """One step: exactly one step kind (one field per kind; `automation.advance.kinds` runs them)."""

    send: SendStep | None = None
    wait: WaitStep | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        kinds = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a step is exactly one of: {', '.join(type(self).model_fields)}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)

    @property
    def body(self) -> SendStep | WaitStep:
        body: SendStep | WaitStep = getattr(self, self.kind)
        return body


class Cooldown(_Strict):
    cooldown: Duration


class ExitOn(_Strict):
    """Events that end an active enrollment."""

    event: str | None = None
    events: list[str] | None = None

    def names(self) -> list[str]:
        return [*([self.event] if self.event else []), *(self.events or [])]


class Goal(_Strict):
    """The conversion this journey works for: the event, within a window after a send."""

    event: str
    within: Duration = dt.timedelta(days=7)


class QuietHours(_Strict):
    start: TimeOfDay = dt.time(21, 0)
    end: TimeOfDay = dt.time(8, 0)


class Journey(_Strict):
    """One journey file."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    name: str
    description: str | None = None
    enabled: bool = True
    trigger: Trigger
    audience: Filter | None = None
    re_entry: Literal["once_per_occurrence", "once"] | Cooldown = "once_per_occurrence"
    exit_on: ExitOn | None = None
    goal: Goal | None = None
    transactional: bool = Field(False, description="Exempt from marketing consent and caps.")
    quiet_hours: QuietHours | Literal[False] = QuietHours()
    frequency_cap: bool = Field(True, description="Whether the cross-journey cap applies.")
    cap_action: Literal["defer", "skip"] = "defer"
    max_sms_segments: int | None = Field(None, gt=0)
    steps: list[Step] = Field(min_length=1)

    @field_validator("steps")
    @classmethod
    def _unique_step_ids(cls, steps: list[Step]) -> list[Step]:
        seen: set[str] = set()
        for n, step in enumerate(steps, 1):
            sid = step.body.id or f"step-{n}"
            if sid in seen:
                raise ValueError(f"duplicate step id {sid!r}")
            seen.add(sid)
        return steps

    def step_ids(self) -> list[str]:
        return [s.body.id or f"step-{n}" for n, s in enumerate(self.steps, 1)]

    def step_index(self, step_id: str) -> int | None:
        ids = self.step_ids()
        return ids.index(step_id) if step_id in ids else None

    def send_steps(self) -> list[tuple[str, SendStep]]:
        return [(sid, s.send) for sid, s in zip(self.step_ids(), self.steps, strict=True) if s.send]


# ---------------------------------------------------------------- loading


def plain(node: Any) -> Any:
    """A round-trip YAML tree as plain dicts and lists, for pydantic."""
    if isinstance(node, CommentedMap):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [plain(v) for v in node]
    return node


def position(root: Any, loc: tuple[Any, ...], at_key: bool) -> tuple[int, int]:
    """Line and column (1-based) of the node at a pydantic `loc` path."""
    node, line, col = root, 0, 0
    for n, part in enumerate(loc):
        last = n == len(loc) - 1
        if isinstance(node, CommentedMap) and part in node:
            child = node[part]
            scalar = not isinstance(child, CommentedMap | CommentedSeq)
            line, col = node.lc.value(part) if (last and scalar and not at_key) else node.lc.key(part)
            node = child
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line, col = node.lc.item(part)
            node = node[part]
        else:
            break
    return line + 1, col + 1


def _model_at(model: Any, path: tuple[Any, ...]) -> Any:
    """The pydantic model class a loc path leads to, for did-you-mean hints."""
    for part in path:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", {})
        field = fields.get(part) or next((f for f in fields.values() if f.alias == part), None)
        if field is None:
            return None
        model = _unwrap(field.annotation)
    return model


def _unwrap(annotation: Any) -> Any:
    for arg in (annotation, *get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        if get_origin(arg) is list:
            return _unwrap(get_args(arg)[0])
    return None


def _known_keys(model: Any) -> list[str]:
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _messages(exc: ValidationError, root: Any, source: str) -> list[str]:
    out: list[str] = []
    seen: set[tuple[int, int, str]] = set()
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        loc = tuple(
            p
            for p in loc
            if p
            not in (
                "literal['once_per_occurrence','once']",
                "Cooldown",
                "QuietHours",
                "literal[False]",
            )
        )
        if err["type"] == "extra_forbidden":
            key = str(loc[-1])
            known = _known_keys(_model_at(Journey, loc[:-1]))
            hint = difflib.get_close_matches(key, known, n=1)
            msg = f"unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            if known:
                msg += f"; expected one of: {', '.join(known)}"
            line, col = position(root, loc, at_key=True)
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            where = ".".join(str(p) for p in loc)
            if err["type"] == "missing":
                msg = f"missing required key {str(loc[-1])!r}"
                line, col = position(root, loc[:-1], at_key=False)
            else:
                msg = f"{where}: {msg}" if where else msg
                line, col = position(root, loc, at_key=False)
        if (line, col, msg) not in seen:
            seen.add((line, col, msg))
            out.append(f"{source}:{line}:{col}: {msg}")
    return out


def parse_journey(text: str, source: str) -> tuple[Journey | None, list[str], Any]:
    """Parse one journey; returns (journey or None, problems, the positioned YAML tree)."""
    yaml = YAML(typ="rt")
    try:
        root = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        return None, [f"{source}:{line}:{col}: invalid YAML: {problem}"], None
    except YAMLError as exc:
        return None, [f"{source}:1:1: invalid YAML: {exc}"], None
    if not isinstance(root, CommentedMap):
        return None, [f"{source}:1:1: a journey file must be a mapping of keys"], None
    try:
        journey = Journey.model_validate(plain(root))
    except ValidationError as exc:
        return None, _messages(exc, root, source), root
    return journey, [], root


class LoadedJourney(BaseModel):
    """A parsed journey with the file it came from and its YAML tree for positions."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    journey: Journey
    path: Path
    tree: Any

    def where(self, *loc: Any) -> str:
        line, col = position(self.tree, loc, at_key=False)
        return f"{self.path}:{line}:{col}"


def load_journey_files(directory: Path) -> tuple[list[LoadedJourney], list[str]]:
    """Parse every `*.yaml`/`*.yml` in a folder (not templates); collect all problems."""
    if not directory.is_dir():
        return [], [f"{directory}: journeys folder not found"]
    loaded: list[LoadedJourney] = []
    problems: list[str] = []
    ids: dict[str, Path] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        if path.name == TIER_FILE:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}:1:1: cannot read: {exc}")
            continue
        journey, errs, tree = parse_journey(text, str(path))
        problems.extend(errs)
        if journey is None:
            continue
        if journey.id in ids:
            problems.append(
                f"{LoadedJourney(journey=journey, path=path, tree=tree).where('id')}: "
                f"duplicate journey id {journey.id!r} (also in {ids[journey.id]})"
            )
            continue
        ids[journey.id] = path
        loaded.append(LoadedJourney(journey=journey, path=path, tree=tree))
    return loaded, problems


TIER_FILE = "tiers.yaml"
DEFAULT_TIERS = ("bronze", "silver", "gold", "platinum")


def load_tier_order(directory: Path) -> tuple[tuple[str, ...], list[str]]:
    """The tier order from `tiers.yaml` beside the journeys (`order: [..]`), else the default."""
    path = directory / TIER_FILE
    if not path.exists():
        return DEFAULT_TIERS, []
    try:
        root = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as exc:
        return DEFAULT_TIERS, [f"{path}:1:1: cannot read tier order: {exc}"]
    order = root.get("order") if isinstance(root, CommentedMap) else None
    if not isinstance(order, list) or not order or not all(isinstance(t, str) for t in order):
        return DEFAULT_TIERS, [f"{path}:1:1: expected `order:` with a list of tier names"]
    return tuple(order), []


def journey_json_schema() -> str:
    """The JSON Schema editors use to complete and check journey files."""
    schema = Journey.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Lifecycle journey"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


__all__ = [
    "Journey",
    "LoadedJourney",
    "SendStep",
    "Step",
    "WaitStep",
    "format_duration",
    "journey_json_schema",
    "load_journey_files",
    "load_tier_order",
    "parse_journey",
]
