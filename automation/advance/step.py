"""What a step kind is: the one class every step module (`send`, `wait`, ...) fills in.

Running a step is pure (a `JudgedKind` asks the database which way each
enrollment goes, set-based, in `choose`): from the instant the step was reached (`at`), `now`
and the customer's zone, it says when the next step may run and which
messages it plans. The walk (`advance.plan`) stops at the first step whose
next instant lies after `now`, and the enrollment waits in the database.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy.orm import Session

from automation.core.journeys import SendStep
from automation.core.walk import Choice

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class PlannedSend:
    """A message a send step plans, due at `due_at`."""

    step_id: str
    step: SendStep
    due_at: dt.datetime
    fell_due_at: dt.datetime  # the step's own schedule, however late the tick (`send_within` counts from it)


@dataclass(frozen=True)
class Outcome:
    """What running one step produced: when the next step may run, and the messages planned.

    `judged`: the step chooses one of its child lists per enrollment, from the
    database (a `JudgedKind`); the walk stops there and the batch asks it.
    """

    at: dt.datetime
    sends: tuple[PlannedSend, ...] = ()
    judged: bool = False


class StepKind(ABC, Generic[M]):
    """One step kind; subclasses set the class attributes and write `run`."""

    #: The key of the step in a journey file.
    name: ClassVar[str]
    #: Its settings (`core.journeys`), the schema entry.
    model: type[M]

    @abstractmethod
    def run(self, step_id: str, body: M, at: dt.datetime, now: dt.datetime, tz: ZoneInfo) -> Outcome:
        """Run the step reached at `at` (never after `now`), judged at `now` in the customer's zone."""

    def waits_for(self, body: M, context: Mapping[str, Any]) -> str:
        """What an enrollment parked at this step waits for until its `next_at` (`customers show`).

        Most kinds are parked at only until they are reached (a wait before them
        ends at `next_at`); a kind that holds an enrollment itself (waiting for
        an event) says so, from the enrollment's `context` (the trigger event's
        values it matches on), and its `next_at` is its deadline.
        """
        return f"to reach this {self.name} step"


#: Enrollments reached a judged step: (enrollment id, the instant each reached it).
Reached = list[tuple[int, dt.datetime]]
#: How each enrollment goes on, by enrollment id.
Choices = dict[int, Choice]
#: The most enrollments one `choose` judges: its statements bind one id per enrollment.
CHUNK = 5000


@dataclass(frozen=True)
class Judging:
    """What a judged kind is asked: the enrollments (at most CHUNK) that reached step `step_id`, at `now`."""

    session: Session
    step_id: str
    reached: Reached
    now: dt.datetime


class JudgedKind(StepKind[M]):
    """A step kind that chooses, per enrollment, the child step list to go on with."""

    def run(self, step_id: str, body: M, at: dt.datetime, now: dt.datetime, tz: ZoneInfo) -> Outcome:
        return Outcome(at, judged=True)

    @abstractmethod
    def choose(self, body: M, judging: Judging) -> Choices:
        """How each enrollment goes on: a child list (by its YAML name) and the instant it starts.

        A kind that judges at once (a branch) starts the list the instant the step
        was reached; one that waits (a `wait_for`) may answer "no path yet"
        (`Choice.path` None) and keep the enrollment parked until `Choice.at`.
        """
