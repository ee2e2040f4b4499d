"""Journey definitions: the pydantic models and their JSON Schema.

Reading them from YAML files, with positions, is `automation.definitions.loader`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.functional_validators import BeforeValidator
from pydantic.json_schema import WithJsonSchema

from automation.core import assignment
from automation.core.assignment import Assignment
from automation.core.coupons import POOL_NAME
from automation.core.declarations import editor_schema
from automation.core.durations import MAX_DAYS, parse_duration, parse_time_of_day
from automation.core.filters import Filter
from automation.core.statuses import Channel
from automation.core.topics import MARKETING, TOPIC_ID
from automation.core.walk import Placed, walk


def _duration(value: Any) -> dt.timedelta:
    if isinstance(value, dt.timedelta):
        return value
    return parse_duration(str(value))


def _time_of_day(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value
    return parse_time_of_day(str(value))


def _percent(value: Any) -> float:
    text = str(value).strip()
    if not text.endswith("%"):
        raise ValueError("a percentage is written like 10%")
    try:
        pct = float(text[:-1])
    except ValueError:
        raise ValueError("a percentage is written like 10%") from None
    if not 0 <= pct < 100:
        raise ValueError("a percentage lies in [0%, 100%)")
    return pct


Percent = Annotated[
    float,
    BeforeValidator(_percent),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d+)?%$", "examples": ["10%"]}),
]

Duration = Annotated[
    dt.timedelta,
    BeforeValidator(_duration),
    WithJsonSchema({"type": "string", "pattern": r"^(\d+[smhdw])+$", "examples": ["90m", "2h", "7d"]}),
]


def _duration_or_off(value: Any) -> dt.timedelta | None:
    return None if value is False else _duration(value)


DurationOrOff = Annotated[
    dt.timedelta | None,
    BeforeValidator(_duration_or_off),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^(\d+[smhdw])+$", "examples": ["24h", "3d"]},
                {"const": False},
            ]
        }
    ),
]
TimeOfDay = Annotated[
    dt.time,
    BeforeValidator(_time_of_day),
    WithJsonSchema({"type": "string", "pattern": r"^([01]?\d|2[0-3]):[0-5]\d$", "examples": ["09:00"]}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class _OneKind(_Strict):
    """A choice of kinds written as one optional field per kind, exactly one of them set."""

    @classmethod
    def _not_one(cls) -> str:
        """What the error says when none or several kinds are set."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if sum(getattr(self, k) is not None for k in type(self).model_fields) != 1:
            raise ValueError(self._not_one())
        return self

    @property
    def kind(self) -> str:
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)


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
    days: int = Field(gt=0, le=MAX_DAYS)
    lookback: Duration = Field(dt.timedelta(days=3), description="Lapses older than this never enter.")


class TierChangeTrigger(_Strict):
    """A change of the `tier` trait, to given tiers and/or in a direction."""

    to: list[str] | None = Field(None, description="Enter only when the new tier is one of these.")
    direction: Literal["up", "down", "any"] = "any"
    lookback: Duration = Field(dt.timedelta(days=3))


class PointsExpiringTrigger(_Strict):
    """Before loyalty points expire: once per group of lots expiring the same day."""

    within: Duration = Field(dt.timedelta(days=30), description="How long before the expiry.")
    min_points: int = Field(100, ge=1, description="Only when at least this many points expire that day.")
    lookback: Duration = Field(dt.timedelta(days=3), description="Groups that came due earlier never enter.")


class TierWillDowngradeTrigger(_Strict):
    """Before a tier review that would move the customer down: once per tier period."""

    within: Duration = Field(dt.timedelta(days=30), description="How long before the tier anniversary.")
    lookback: Duration = Field(
        dt.timedelta(days=3), description="Warnings that came due earlier never enter."
    )


class ManualTrigger(_Strict):
    """Nobody enters except through `automation campaign send`."""


class Trigger(_OneKind):
    """Exactly one trigger kind."""

    event: EventTrigger | None = None
    anniversary: AnniversaryTrigger | None = None
    inactivity: InactivityTrigger | None = None
    tier_change: TierChangeTrigger | None = None
    points_expiring: PointsExpiringTrigger | None = None
    tier_will_downgrade: TierWillDowngradeTrigger | None = None
    manual: ManualTrigger | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_manual(cls, value: Any) -> Any:
        if value == "manual":
            return {"manual": {}}
        if isinstance(value, dict) and "manual" in value and value["manual"] is None:
            return {**value, "manual": {}}
        return value

    @classmethod
    def _not_one(cls) -> str:
        *others, last = cls.model_fields
        return f"a trigger has exactly one kind: {', '.join(others)} or {last}"

    def body(self) -> BaseModel:
        """The settings of the trigger's kind."""
        body: BaseModel = getattr(self, self.kind)
        return body


class StepBody(_Strict):
    """What every step kind's settings have: a stable id, and which fields hold child step lists."""

    #: The fields holding lists of steps (`automation.core.walk` walks them).
    children: ClassVar[tuple[str, ...]] = ()

    id: str | None = Field(None, description="Stable step id, unique in the journey.")

    def child_lists(self) -> list[tuple[str, tuple[Any, ...], Sequence[Step]]]:
        """This step's child step lists: (name, YAML path from the step's mapping, the steps).

        By default the `children` fields, each named as in the file; a kind whose
        lists sit deeper (a list of weighted paths) overrides this.
        """
        fields = type(self).model_fields
        out: list[tuple[str, tuple[Any, ...], Sequence[Step]]] = []
        for name in self.children:
            alias = fields[name].alias or name
            out.append((alias, (alias,), getattr(self, name)))
        return out


class Variant(_Strict):
    """One arm of an A/B test of a send: a template, and its share of the entrants."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    template: str
    weight: float = Field(gt=0, description="Relative share; the arms' weights need not sum to 100.")


class SendStep(StepBody):
    """Send one message on a channel from a template, or from one of weighted `variants`."""

    id: str | None = Field(None, description="Stable step id; defaults to step-N.")
    channel: Channel
    template: str | None = None
    variants: list[Variant] | None = Field(
        None, min_length=2, description="Instead of `template`: an A/B test, each entrant in one arm."
    )
    if_: Filter | None = Field(None, alias="if", description="Checked at the moment of sending.")
    coupon: str | None = Field(
        None,
        pattern=POOL_NAME,
        description="A coupon pool: the message gets one unused code of it (`coupon.code`).",
    )

    @model_validator(mode="after")
    def _template_or_variants(self) -> SendStep:
        if (self.template is None) == (self.variants is None):
            raise ValueError("a send has exactly one of: template, variants")
        return self

    @field_validator("variants")
    @classmethod
    def _unique_variant_ids(cls, variants: list[Variant] | None) -> list[Variant] | None:
        ids = [v.id for v in variants or ()]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate variant id {next(i for i in ids if ids.count(i) > 1)!r}")
        return variants

    def templates(self) -> list[str]:
        """Every template this step may send."""
        return [v.template for v in self.variants] if self.variants else [self.template or ""]

    def assign(self, journey_id: str, step_id: str, customer_id: str) -> tuple[str, Assignment | None]:
        """The template this customer gets, and the variant assignment when there are variants."""
        if not self.variants:
            return self.template or "", None
        chosen = assignment.pick(journey_id, step_id, customer_id, [(v.id, v.weight) for v in self.variants])
        return next(v.template for v in self.variants if v.id == chosen.arm), chosen


class WaitStep(StepBody):
    """Wait for a duration, or until a local time of day."""

    duration: Duration | None = None
    minutes: int | None = Field(None, gt=0, le=MAX_DAYS * 24 * 60)
    hours: int | None = Field(None, gt=0, le=MAX_DAYS * 24)
    days: int | None = Field(None, gt=0, le=MAX_DAYS)
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


class BranchStep(StepBody):
    """Judge `if` when the enrollment reaches the step; go on with `then` or `else` (either may be empty)."""

    children: ClassVar[tuple[str, ...]] = ("then", "else_")

    if_: Filter = Field(alias="if", description="The filter language plus engagement conditions.")
    then: list[Step] = Field(default_factory=list)
    else_: list[Step] = Field(default_factory=list, alias="else")


class SplitPath(_Strict):
    """One weighted path of a `split`: its own steps (may be empty)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    weight: float = Field(gt=0, description="Relative share; the paths' weights need not sum to 100.")
    steps: list[Step] = Field(default_factory=list)


class SplitStep(StepBody):
    """Weighted random paths: each entrant goes down one, chosen by the assignment hash, then rejoins."""

    paths: list[SplitPath] = Field(min_length=2)

    @field_validator("paths")
    @classmethod
    def _unique_path_ids(cls, paths: list[SplitPath]) -> list[SplitPath]:
        ids = [p.id for p in paths]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate path id {next(i for i in ids if ids.count(i) > 1)!r}")
        return paths

    def child_lists(self) -> list[tuple[str, tuple[Any, ...], Sequence[Step]]]:
        """Each path's steps, named by the path's id."""
        return [(p.id, ("paths", n, "steps"), p.steps) for n, p in enumerate(self.paths)]


class WaitForStep(StepBody):
    """Wait until an event of the customer arrives or `within` passes, then `happened` or `timed_out`.

    The event counts when its own timestamp lies between the instant the step
    was reached and the deadline; `match` names properties that must equal the
    trigger event's (the cart an order is for), so it needs an event trigger.
    """

    children: ClassVar[tuple[str, ...]] = ("happened", "timed_out")

    event: str = Field(min_length=1, description="The event waited for, e.g. order_placed.")
    match: list[str] = Field(
        default_factory=list, description="Properties that must equal the trigger event's, e.g. [cart_id]."
    )
    within: Duration = Field(description="How long to wait at most, counted from reaching the step.")
    happened: list[Step] = Field(default_factory=list, description="Steps if it came (empty: the end).")
    timed_out: list[Step] = Field(default_factory=list, description="Steps if it did not.")

    @field_validator("match")
    @classmethod
    def _unique_match(cls, match: list[str]) -> list[str]:
        if len(set(match)) != len(match):
            raise ValueError(f"duplicate match property {next(m for m in match if match.count(m) > 1)!r}")
        return match


class Step(_OneKind):
    """One step: exactly one step kind.

    One field per kind, each a kind's settings; `automation.advance.kinds` runs them.
    """

    send: SendStep | None = None
    wait: WaitStep | None = None
    branch: BranchStep | None = None
    split: SplitStep | None = None
    wait_for: WaitForStep | None = None

    @classmethod
    def _not_one(cls) -> str:
        return f"a step is exactly one of: {', '.join(cls.model_fields)}"

    @property
    def body(self) -> StepBody:
        body: StepBody = getattr(self, self.kind)
        return body


class Cooldown(_Strict):
    cooldown: Duration


class ExitOn(_Strict):
    """Events that end an active enrollment."""

    event: str | None = None
    events: list[str] | None = None
    match: list[str] = Field(
        default_factory=list,
        description="Properties the exit event must share with the trigger event, e.g. [cart_id].",
    )

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
    transactional: bool = Field(False, description="Exempt from marketing consent, topics and caps.")
    topic: str | None = Field(
        None,
        pattern=TOPIC_ID,
        description="The subscription topic (topics.yaml) of a marketing journey; default `marketing`.",
    )
    double_opt_in: bool = Field(
        False,
        description="A sign-up journey of its topic: its emails carry the confirmation link, and a yes "
        "in the topic counts only once confirmed.",
    )
    quiet_hours: QuietHours | Literal[False] = QuietHours()
    frequency_cap: bool = Field(True, description="Whether the cross-journey cap applies.")
    cap_action: Literal["defer", "skip"] = "defer"
    max_sms_segments: int | None = Field(None, gt=0)
    priority: int = Field(
        0, description="Higher wins a contested frequency-cap slot; ties go to the message due first."
    )
    send_within: DurationOrOff = Field(
        dt.timedelta(hours=24),
        description="A message not sent this long after its step fell due is skipped as stale; false: never.",
    )
    holdout: Percent = Field(
        0.0, description="Share of entrants who get no message and are measured against the others, e.g. 10%."
    )
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _topic_is_marketing(self) -> Journey:
        if self.transactional and self.topic is not None:
            raise ValueError("a transactional journey has no topic")
        if self.transactional and self.holdout:
            raise ValueError("a transactional journey has no holdout: its messages always go")
        if self.double_opt_in and self.topic is None:
            raise ValueError("double_opt_in needs the `topic` it signs customers up to")
        return self

    @property
    def topic_id(self) -> str | None:
        """The topic a send is judged against: none for transactional mail, else `marketing` by default."""
        return None if self.transactional else self.topic or MARKETING

    @field_validator("steps")
    @classmethod
    def _unique_step_ids(cls, steps: list[Step]) -> list[Step]:
        seen: set[str] = set()
        for placed in walk(steps):
            if placed.id in seen:
                where = f"at step {placed.number} (ids are unique across nested steps)"
                raise ValueError(f"duplicate step id {placed.id!r} {where}")
            seen.add(placed.id)
        return steps

    @property
    def placed(self) -> dict[str, Placed]:
        """Every step of the tree by id, depth first in file order (`automation.core.walk`)."""
        return {p.id: p for p in walk(self.steps)}

    def matching(self) -> list[tuple[Any, ...]]:
        """The YAML paths of every `match` (wait_for steps, exit_on): each needs an event trigger to match."""
        paths = [(*p.loc, "match") for p in self.placed.values() if p.step.wait_for and p.step.wait_for.match]
        if self.exit_on is not None and self.exit_on.match:
            paths.append(("exit_on", "match"))
        return paths

    def step_ids(self) -> list[str]:
        return list(self.placed)

    def find_step(self, ref: str) -> Placed | None:
        """A step by its id or by its position as people read it ("3", "2.then.1")."""
        placed = self.placed
        return placed.get(ref) or next((p for p in placed.values() if p.number == ref), None)

    def send_steps(self) -> list[tuple[str, SendStep]]:
        return [(sid, p.step.send) for sid, p in self.placed.items() if p.step.send]


def journey_json_schema() -> str:
    """The JSON Schema editors use to complete and check journey files."""
    return editor_schema(Journey, "Lifecycle journey", by_alias=True)


Step.model_rebuild()
BranchStep.model_rebuild()
SplitPath.model_rebuild()
SplitStep.model_rebuild()
WaitForStep.model_rebuild()

__all__ = [
    "BranchStep",
    "Journey",
    "SendStep",
    "SplitStep",
    "Step",
    "Variant",
    "WaitForStep",
    "WaitStep",
    "journey_json_schema",
]
