"""The loyalty programme of `journeys/loyalty.yaml`: how points are earned and kept, and the tiers. Pure.

The file replaces the older `tiers.yaml`: the order of `tiers.levels` is the
tier order that `tier_change` journeys compare with `direction: up` or `down`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from automation.core.declarations import editor_schema, refuse_repeats
from automation.core.journeys import Duration

#: The tier order when no programme defines tiers.
DEFAULT_TIERS = ("bronze", "silver", "gold", "platinum")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EarnRule(_Strict):
    """One way to earn: per currency unit of an event's amount, a fixed number per event, or on a birthday."""

    event: str | None = Field(None, min_length=1, description="The event that earns, e.g. order_placed.")
    per_currency_unit: float | None = Field(
        None, gt=0, description="Points per unit of `amount_property`, rounded down."
    )
    amount_property: str = Field("total", min_length=1)
    points: int | None = Field(None, gt=0, description="A fixed number of points per event.")
    max_per_day: int | None = Field(None, gt=0, description="At most this many earning events a day.")
    birthday: int | None = Field(None, gt=0, description="Points once a year, on the customer's birthday.")

    @model_validator(mode="after")
    def _one_way(self) -> EarnRule:
        if (self.event is None) == (self.birthday is None):
            raise ValueError("an earn rule names either `event` or `birthday`")
        if self.event is not None and (self.per_currency_unit is None) == (self.points is None):
            raise ValueError("an event earn rule has either `per_currency_unit` or `points`")
        return self

    def earned(self, amount: float | None) -> int:
        """The base points for one event whose amount is `amount` (before any multiplier)."""
        if self.points is not None:
            return self.points
        if self.per_currency_unit is None or amount is None or amount <= 0:
            return 0
        return int(amount * self.per_currency_unit)


class Expiry(_Strict):
    """When an earned lot expires: a fixed time after it was earned, or at the end of its month or year."""

    after: Duration | None = None
    at: Literal["end_of_month", "end_of_year"] | None = None

    @model_validator(mode="after")
    def _one(self) -> Expiry:
        if (self.after is None) == (self.at is None):
            raise ValueError("expire has either `after` or `at`")
        return self

    def expires_at(self, earned_at: dt.datetime) -> dt.datetime:
        """The instant a lot earned at `earned_at` expires (month and year ends in UTC)."""
        if self.after is not None:
            return earned_at + self.after
        utc = earned_at.astimezone(dt.UTC)
        if self.at == "end_of_year":
            return dt.datetime(utc.year + 1, 1, 1, tzinfo=dt.UTC)
        year, month = (utc.year + 1, 1) if utc.month == 12 else (utc.year, utc.month + 1)
        return dt.datetime(year, month, 1, tzinfo=dt.UTC)


class Points(_Strict):
    """The `points:` section."""

    earn: list[EarnRule] = Field(min_length=1)
    multipliers: dict[str, float] = Field(default_factory=dict, description="By the tier held when earning.")
    pending: Duration | None = Field(None, description="Order points become spendable after this.")
    expire: Expiry | None = None
    redeem_event: str = "points_redeemed"
    refund_event: str = "order_refunded"

    @field_validator("multipliers")
    @classmethod
    def _positive(cls, multipliers: dict[str, float]) -> dict[str, float]:
        for tier, factor in multipliers.items():
            if factor <= 0:
                raise ValueError(f"multiplier of {tier!r} must be above zero")
        return multipliers

    def rule_for(self, event: str) -> EarnRule | None:
        return self._rules.get(event)

    @cached_property
    def _rules(self) -> dict[str, EarnRule]:
        """Looked up on every event a ledger applies: the first rule of each event, once (frozen)."""
        rules: dict[str, EarnRule] = {}
        for rule in self.earn:
            if rule.event is not None:
                rules.setdefault(rule.event, rule)
        return rules

    def birthday_points(self) -> int:
        return next((r.birthday for r in self.earn if r.birthday is not None), 0)


class Level(_Strict):
    name: str = Field(min_length=1, max_length=64)
    min: float = Field(ge=0, description="The window measure that reaches this tier.")


class Downgrade(_Strict):
    at: Literal["tier_anniversary", "immediately"] = "tier_anniversary"
    one_step: bool = True


class Tiers(_Strict):
    """The `tiers:` section: levels from lowest to highest, reached by a measure over a rolling window."""

    measure: Literal["spend", "points_earned"] = "spend"
    window: Duration = dt.timedelta(days=365)
    levels: list[Level] = Field(min_length=1)
    downgrade: Downgrade = Downgrade()

    @field_validator("levels")
    @classmethod
    def _ascending(cls, levels: list[Level]) -> list[Level]:
        refuse_repeats((level.name for level in levels), "tier {!r} is listed twice")
        if levels[0].min != 0:
            raise ValueError("the lowest tier starts at min: 0")
        if any(b.min <= a.min for a, b in itertools.pairwise(levels)):
            raise ValueError("tiers are listed from lowest to highest, each with a larger min")
        return levels

    def order(self) -> tuple[str, ...]:
        return self._order

    @cached_property
    def _order(self) -> tuple[str, ...]:
        """Read on every event a ledger applies: computed once (the model is frozen)."""
        return tuple(level.name for level in self.levels)


class Programme(_Strict):
    """The whole of `journeys/loyalty.yaml`."""

    points: Points | None = None
    tiers: Tiers | None = None

    @model_validator(mode="after")
    def _known_multipliers(self) -> Programme:
        if self.tiers is not None and self.points is None:
            raise ValueError("tiers are measured on the points ledger: define `points` too")
        if self.points is not None and self.tiers is not None:
            unknown = set(self.points.multipliers) - set(self.tiers.order())
            if unknown:
                raise ValueError(f"multipliers name unknown tiers: {', '.join(sorted(unknown))}")
        return self

    def tier_order(self) -> tuple[str, ...]:
        return self.tiers.order() if self.tiers is not None else DEFAULT_TIERS

    def multiplier(self, tier: str | None) -> float:
        if self.points is None or tier is None:
            return 1.0
        return self.points.multipliers.get(tier, 1.0)


def loyalty_json_schema() -> str:
    """The JSON Schema editors use for `loyalty.yaml`."""
    return editor_schema(Programme, "The loyalty programme")
