"""Declared custom traits (`journeys/traits.yaml`) and the names templates and filters may use. Pure.

Well-known traits are columns; any other trait a template or filter reads must
be declared, so that a misspelling is a load-time error with a did-you-mean and
a customer who lacks a declared trait gets its default instead of a failure.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from automation.core.declarations import editor_schema, refuse_repeats
from automation.core.filters import CUSTOMER_FACTS, Filter
from automation.core.records import WELL_KNOWN

#: What a template's `customer` holds besides the declared traits.
CUSTOMER_FIELDS = (*WELL_KNOWN, "id", *CUSTOMER_FACTS)
TraitType = Literal["string", "number", "integer", "boolean", "date", "datetime", "list"]


def _date(value: Any) -> bool:
    if isinstance(value, dt.date):
        return True
    try:
        dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return False
    return True


_FITS = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "date": _date,
    "datetime": _date,
    "list": lambda v: isinstance(v, list),
}


class TraitDeclaration(BaseModel):
    """One custom trait: its name, type, the value a customer without it gets, and what it means."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="As sent in identify records.")
    type: TraitType = Field(description="string, number, integer, boolean, date, datetime or list.")
    default: Any = Field(None, description="What templates see for a customer without it (else empty).")
    description: str | None = Field(None, description="For people.")

    @model_validator(mode="after")
    def _default_fits(self) -> TraitDeclaration:
        if self.default is not None and not _FITS[self.type](self.default):
            raise ValueError(f"default {self.default!r} is not of type {self.type}")
        return self

    def default_value(self) -> Any:
        """The default as templates see it (dates as ISO text, like stored traits)."""
        if isinstance(self.default, dt.date):
            return self.default.isoformat()
        return json.loads(json.dumps(self.default)) if self.default is not None else None


class TraitFile(BaseModel):
    """`journeys/traits.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    traits: list[TraitDeclaration] = Field(default_factory=list)

    @field_validator("traits")
    @classmethod
    def _unique_and_custom(cls, traits: list[TraitDeclaration]) -> list[TraitDeclaration]:
        for t in traits:
            if t.name in CUSTOMER_FIELDS:
                raise ValueError(f"{t.name!r} is well known; declare only custom traits")
        refuse_repeats((t.name for t in traits), "trait {!r} is declared twice")
        return traits


class Traits:
    """The declared traits, and what a template or filter may read."""

    def __init__(self, declared: Iterable[TraitDeclaration] = (), *, check: bool = True) -> None:
        self.declared = {t.name: t for t in declared}
        # Off while traits.yaml itself is broken, so its own problems are not echoed at every use.
        self.check = check

    def defaults(self) -> dict[str, Any]:
        """Every declared trait's value for a customer who lacks it."""
        return {name: t.default_value() for name, t in self.declared.items()}

    def known(self) -> tuple[str, ...]:
        return (*CUSTOMER_FIELDS, *self.declared)

    def problem(self, name: str, what: str = "trait") -> str | None:
        """Why `name` may not be read (unknown, with a did-you-mean), or None."""
        if not self.check or name in CUSTOMER_FIELDS or name in self.declared:
            return None
        hint = difflib.get_close_matches(name, self.known(), n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        return f"unknown {what} {name!r}{suggestion}; declare custom traits in traits.yaml"


def filter_traits(f: Filter, path: tuple[Any, ...]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Every trait a filter names, with the YAML path to its `trait` key."""
    for loc, node in f.nodes(path):
        if node.trait is not None:
            yield node.trait, (*loc, "trait")


def traits_json_schema() -> str:
    """The JSON Schema editors use for `traits.yaml`."""
    return editor_schema(TraitFile, "Declared custom traits")
