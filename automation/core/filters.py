"""The audience / `if` filter language: the tree and its human description.

A filter is a tree of `all` / `any` / `not` around conditions such as
`{trait: tier, in: [silver, gold]}` or `{fact: order_count, gte: 3}`. The SQL
form lives in `automation.store.filter_sql`; this module stays pure.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, model_validator

from automation.core.records import WELL_KNOWN

Scalar = str | int | float | bool | dt.date | dt.datetime

#: Traits stored as columns (everything else is looked up in the JSON `traits`).
COLUMN_TRAITS = WELL_KNOWN
#: Order facts maintained on ingest.
FACTS = ("order_count", "lifetime_value", "last_order_at")
OPERATORS = ("eq", "ne", "in", "gt", "gte", "lt", "lte", "exists")


class Filter(BaseModel):
    """One node of a filter: a combinator (all/any/not) or one condition."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    all: list[Filter] | None = Field(None, description="Every sub-filter holds.")
    any: list[Filter] | None = Field(None, description="At least one sub-filter holds.")
    not_: Filter | None = Field(None, alias="not", description="The sub-filter does not hold.")
    trait: str | None = Field(None, description="A customer trait (column or custom).")
    fact: str | None = Field(None, description="An order fact: " + ", ".join(FACTS))
    eq: Scalar | None = None
    ne: Scalar | None = None
    in_: list[Scalar] | None = Field(None, alias="in")
    gt: Scalar | None = None
    gte: Scalar | None = None
    lt: Scalar | None = None
    lte: Scalar | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> Filter:
        given = self.model_fields_set
        combinators = given & {"all", "any", "not_"}
        subjects = given & {"trait", "fact"}
        ops = given & {"eq", "ne", "in_", "gt", "gte", "lt", "lte", "exists"}
        if combinators:
            if len(combinators) > 1 or subjects or ops:
                raise ValueError("use one of all/any/not alone in a filter node")
            return self
        if len(subjects) != 1:
            raise ValueError("a condition names one `trait` or one `fact`")
        if self.fact is not None and self.fact not in FACTS:
            raise ValueError(f"unknown fact {self.fact!r}; known: {', '.join(FACTS)}")
        if not ops:
            raise ValueError("a condition needs an operator: " + ", ".join(OPERATORS))
        return self

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
    ops = []
    for op in ("eq", "ne", "in_", "gt", "gte", "lt", "lte", "exists"):
        if op in given:
            ops.append(f"{op.rstrip('_')} {getattr(f, op)!r}")
    return f"{f.subject()} " + " and ".join(ops)
