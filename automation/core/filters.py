"""The audience / `if` filter language: the tree and its human description.

A filter is a tree of `all` / `any` / `not` around conditions such as
`{trait: tier, in: [silver, gold]}` or `{fact: order_count, gte: 3}`. The SQL
form lives in `automation.store.filter_sql`; this module stays pure.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from automation.core.records import WELL_KNOWN

Scalar = str | int | float | bool | dt.date | dt.datetime

#: What a subject holds, which decides the operands it can be compared with.
Kind = Literal["text", "number", "flag", "date", "instant", "any"]

#: Traits stored as columns (everything else is looked up in the JSON `traits`).
#: The column traits that are not text; their names are ingest's well-known traits.
NOT_TEXT: dict[str, Kind] = {
    "signed_up_at": "instant",
    "birthday": "date",
    "email_opt_in": "flag",
    "sms_opt_in": "flag",
}
COLUMN_TRAITS: dict[str, Kind] = {name: NOT_TEXT.get(name, "text") for name in WELL_KNOWN}
#: Order facts maintained on ingest.
ORDER_FACTS: dict[str, Kind] = {
    "order_count": "number",
    "lifetime_value": "number",
    "last_order_at": "instant",
}
#: Facts written by `insight refresh` (None until it has run): RFM and the predictions.
INSIGHT_FACTS: dict[str, Kind] = {
    "rfm_r": "number",
    "rfm_f": "number",
    "rfm_m": "number",
    "rfm_segment": "text",
    "p_alive": "number",
    "expected_orders_90d": "number",
    "predicted_clv_365d": "number",
    "clv_decile": "number",
}
#: The facts stored on the customer (a template's `customer` has them too).
CUSTOMER_FACTS: dict[str, Kind] = {**ORDER_FACTS, **INSIGHT_FACTS}
#: The loyalty ledger's balances, kept on the customer's account by every ledger write (0 without one):
#: spendable points, points still pending, and the points of the lots that expire next (the same
#: day as the first, after the latest write).
LOYALTY_FACTS: dict[str, Kind] = {
    "points": "number",
    "pending_points": "number",
    "expiring_points": "number",
}
FACTS: dict[str, Kind] = {**CUSTOMER_FACTS, **LOYALTY_FACTS}
COMPARISONS = ("eq", "ne", "in_", "gt", "gte", "lt", "lte")
OPERATORS = (*COMPARISONS, "exists")
ORDERED = ("gt", "gte", "lt", "lte")
#: What an engagement condition asks about an earlier send of the same enrollment.
ENGAGEMENTS = ("sent", "delivered", "opened", "clicked")
#: A custom trait name must read the same key on PostgreSQL (`->`) and in SQLite's JSON
#: path (`$."name"`), where a quote or a backslash would end or escape the name.
TRAIT_NAME = re.compile(r'^[^"\\\x00-\x1f\x7f]{1,128}$')


def _is_instant(value: Any) -> bool:
    if isinstance(value, dt.date):
        return True
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_date(value: Any) -> bool:
    if isinstance(value, dt.date):
        return not isinstance(value, dt.datetime)
    try:
        dt.date.fromisoformat(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


#: Integers beyond 64 bits cannot be bound as a parameter on SQLite (nor compared as bigint).
INT_LIMIT = 2**63


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return abs(value) < INT_LIMIT if isinstance(value, int) else math.isfinite(value)


def _is_any(value: Any) -> bool:
    """A custom trait's operand: any scalar but a non-finite or over-wide number."""
    return _is_number(value) if isinstance(value, int | float) and not isinstance(value, bool) else True


#: Whether an operand fits a kind, and how to say what it should be.
FITS: dict[Kind, tuple[Callable[[Any], bool], str]] = {
    "text": (lambda v: isinstance(v, str), "text (quote it)"),
    "number": (_is_number, "a number"),
    "flag": (lambda v: isinstance(v, bool), "true or false"),
    "date": (_is_date, "an ISO date YYYY-MM-DD"),
    "instant": (_is_instant, "an ISO 8601 date or instant"),
    "any": (_is_any, "text, true/false, a date or a finite number within 64 bits"),
}


def kind_of(subject: str, is_fact: bool) -> Kind:
    """The kind of a fact, a column trait, or `any` for a custom trait."""
    known = FACTS if is_fact else COLUMN_TRAITS
    return known.get(subject, "any")


class Filter(BaseModel):
    """One node of a filter: a combinator (all/any/not) or one condition."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    all: list[Filter] | None = Field(None, description="Every sub-filter holds.")
    any: list[Filter] | None = Field(None, description="At least one sub-filter holds.")
    not_: Filter | None = Field(None, alias="not", description="The sub-filter does not hold.")
    trait: str | None = Field(None, description="A customer trait (column or custom).")
    fact: str | None = Field(None, description="An order, insight or loyalty fact: " + ", ".join(FACTS))
    eq: Scalar | None = None
    ne: Scalar | None = None
    in_: list[Scalar] | None = Field(None, alias="in")
    gt: Scalar | None = None
    gte: Scalar | None = None
    lt: Scalar | None = None
    lte: Scalar | None = None
    exists: bool | None = None
    step: str | None = Field(None, description="An earlier send step of this enrollment (engagement).")
    sent: bool | None = Field(None, description="That step's message was (true) or was not sent.")
    delivered: bool | None = Field(None, description="... reached the recipient.")
    opened: bool | None = Field(None, description="... was opened (provider webhooks).")
    clicked: bool | None = Field(None, description="... had a link clicked (provider webhooks).")

    @model_validator(mode="after")
    def _one_shape(self) -> Filter:
        given = self.model_fields_set
        combinators = given & {"all", "any", "not_"}
        subjects = given & {"trait", "fact", "step"}
        ops = given & set(OPERATORS)
        asked = given & set(ENGAGEMENTS)
        if combinators:
            if len(combinators) > 1 or subjects or ops or asked:
                raise ValueError("use one of all/any/not alone in a filter node")
            return self
        if "step" in given or asked:
            return self._engagement_shape(subjects, ops, asked)
        if len(subjects) != 1:
            raise ValueError("a condition names one `trait` or one `fact`")
        if self.fact is not None and self.fact not in FACTS:
            raise ValueError(f"unknown fact {self.fact!r}; known: {', '.join(FACTS)}")
        if self.trait is not None and not TRAIT_NAME.match(self.trait):
            raise ValueError("a trait name has 1 to 128 characters, without quotes, backslashes or controls")
        if not ops:
            raise ValueError("a condition needs an operator: " + ", ".join(o.rstrip("_") for o in OPERATORS))
        self._check_operands(given & set(COMPARISONS))
        return self

    def _engagement_shape(self, subjects: set[str], ops: set[str], asked: set[str]) -> Filter:
        """`{step: ID, sent|delivered|opened|clicked: true|false}`, nothing else beside it."""
        if subjects != {"step"} or ops or len(asked) != 1 or getattr(self, next(iter(asked))) is None:
            raise ValueError(
                "an engagement condition is {step: ID, " + "|".join(ENGAGEMENTS) + ": true|false}, alone"
            )
        return self

    @property
    def engagement(self) -> tuple[str, str, bool] | None:
        """(step id, what is asked, the answer wanted) of an engagement condition, else None."""
        if self.step is None:
            return None
        asked = next(e for e in ENGAGEMENTS if getattr(self, e) is not None)
        return self.step, asked, bool(getattr(self, asked))

    def nodes(self, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Filter]]:
        """This node and every node below it, each with its YAML path from here."""
        yield path, self
        for key, subs in (("all", self.all), ("any", self.any)):
            for n, sub in enumerate(subs or []):
                yield from sub.nodes((*path, key, n))
        if self.not_ is not None:
            yield from self.not_.nodes((*path, "not"))

    def _check_operands(self, ops: set[str]) -> None:
        """Each operand must fit what it is compared with, so that a filter that loads also runs."""
        kind = kind_of(self.subject(), self.fact is not None)
        fits, expected = FITS[kind]
        for op in sorted(ops):
            if op in ORDERED and kind == "flag":
                raise ValueError(f"{self.subject()} is true or false: use eq, ne or in, not {op}")
            value = getattr(self, op)
            if op == "in_" and value is None:
                raise ValueError("in: needs a list of values")
            for operand in value if op == "in_" else [value]:
                if operand is not None and not fits(operand):
                    raise ValueError(
                        f"{op.rstrip('_')}: {self.subject()} compares with {expected}, not {operand!r}"
                    )

    def subject(self) -> str:
        return self.trait or self.fact or ""


def describe(f: Filter) -> str:
    """A short human form of one node, for `explain` output."""
    given = f.model_fields_set
    if "all" in given:
        return "all of (" + "; ".join(describe(x) for x in f.all or []) + ")"
    if "any" in given:
        return "any of (" + "; ".join(describe(x) for x in f.any or []) + ")"
    if "not_" in given and f.not_ is not None:
        return "not (" + describe(f.not_) + ")"
    if f.engagement is not None:
        step, asked, wanted = f.engagement
        return f"step {step} {'' if wanted else 'not '}{asked}"
    ops = []
    for op in ("eq", "ne", "in_", "gt", "gte", "lt", "lte", "exists"):
        if op in given:
            ops.append(f"{op.rstrip('_')} {getattr(f, op)!r}")
    return f"{f.subject()} " + " and ".join(ops)
