"""What a trigger kind is: the one class every kind module (`event`, `anniversary`, ...) fills in.

A kind names its YAML key and model, the variables its templates get, and
answers four questions for one journey at `now`: who is due (portable SQL plus
the pure decision, the SQLite path and the fallback), who is due as one
PostgreSQL statement (when the kind has such a form), a customer's latest
occurrence with the reason when there is none (`journeys explain`), and the
context a preview renders with. The rules every kind shares (look-back,
occurrence key, re-entry, cool-down) are not here: `core.entry` and
`enroll.policy` hold them once.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import Session

from automation.core.journeys import Journey
from automation.core.planner import Occurrence
from automation.core.programme import Programme, Tiers
from automation.errors import UserError
from automation.store.models import Customer

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Scope:
    """What some kinds need beyond the journey and `now`."""

    tier_order: tuple[str, ...]
    default_tz: str
    #: The programme's tiers (None without `tiers:` in loyalty.yaml).
    tiers: Tiers | None = None
    #: An event id at or below which every event was committed when the tick began
    #: (`enroll.marks.frontier`); None when unknown.
    events_committed: int | None = None


@dataclass(frozen=True)
class Candidate:
    """One due occurrence for one customer: what an enrollment is made of."""

    customer_id: str
    raw_key: str
    occurred_at: dt.datetime
    context: dict[str, Any]


@dataclass(frozen=True)
class Found:
    """The customer's latest occurrence of the trigger (look-back not applied), or why there is none."""

    occurrence: Occurrence | None
    why_not: str = ""


Where = Callable[..., str]


class TriggerKind(ABC, Generic[M]):
    """One trigger kind; subclasses set the class attributes and override what applies to them."""

    #: The key under `trigger:` in a journey file.
    name: ClassVar[str]
    #: Its settings (`core.journeys`), the schema entry.
    model: type[M]
    #: The template variables the kind adds to the common ones, each with the value a template
    #: sees when an enrollment's context lacks it.
    defaults: ClassVar[dict[str, Any]]
    #: Whether the tick enrolls anyone (a manual journey is entered by campaigns only).
    enrolls_at_tick: ClassVar[bool] = True

    def settings(self, journey: Journey) -> M:
        """The journey's trigger settings of this kind."""
        body = journey.trigger.body()
        assert isinstance(body, self.model), (journey.id, self.name)
        return body

    def lookback(self, journey: Journey) -> dt.timedelta | None:
        """How old an occasion may be and still enter; None when the kind has no occasions of its own."""
        lookback = getattr(self.settings(journey), "lookback", None)
        assert lookback is None or isinstance(lookback, dt.timedelta)
        return lookback

    @property
    def variables(self) -> frozenset[str]:
        """The names of the kind's template variables."""
        return frozenset(self.defaults)

    def template_variables(self, context: dict[str, Any]) -> dict[str, Any]:
        """The kind's template variables from an enrollment's stored context."""
        return {name: context.get(name, default) for name, default in self.defaults.items()}

    def occasion_day(self, context: dict[str, Any]) -> dt.date | None:
        """The local day a dated occasion falls on (its message is stale after it); None if undated."""
        return None

    def problems(self, journey: Journey, where: Where, programme: Programme | None) -> list[str]:
        """`file:line:col: message` for settings only the catalog can judge (known tiers, ...).

        `programme` is `loyalty.yaml`'s (None when there is none). A journey its programme could
        never fire is an error at load time, not a silent no-op.
        """
        lacking = self.lacking(programme)
        return [] if lacking is None else [f"{where('trigger', self.name)}: {self.name} needs {lacking}"]

    def lacking(self, programme: Programme | None) -> str | None:
        """What the kind needs from `loyalty.yaml` that `programme` lacks; None when nothing."""
        return None

    def candidates(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope
    ) -> Iterable[Candidate]:
        """Everyone due at `now` who is in the audience and not yet enrolled under this occurrence."""
        return []

    def due_statement(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope
    ) -> Select[Any] | None:
        """PostgreSQL: the due occurrences as one SELECT of (customer_id, occurrence_key, occurred_at,
        context), audience not applied; None when nobody can be due. Only kinds with `set_based`."""
        raise NotImplementedError(self.name)

    #: Whether `due_statement` is written (PostgreSQL then enrolls in one statement).
    set_based: ClassVar[bool] = False

    def gather(self, session: Session, journey: Journey, now: dt.datetime, scope: Scope) -> None:
        """PostgreSQL, before `due_statement` and in its transaction: what the kind reads first."""

    def after_enrolling(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope, entered: Sequence[Any]
    ) -> None:
        """PostgreSQL, after the set-based INSERT and in its transaction: what the kind keeps of it,
        given the (customer id, occurrence key) of those who `entered`."""

    @abstractmethod
    def latest(
        self, session: Session, journey: Journey, customer: Customer, now: dt.datetime, scope: Scope
    ) -> Found:
        """The customer's latest occurrence at or before `now`, whatever its age."""

    def preview_context(
        self, session: Session, journey: Journey, customer: Customer, now: dt.datetime, scope: Scope
    ) -> dict[str, Any]:
        """The context a preview renders with when the customer was never enrolled."""
        found = self.latest(session, journey, customer, now, scope)
        if found.occurrence is None:
            raise UserError(f"nothing to preview for customer {customer.id!r}: {found.why_not}")
        return found.occurrence.context
