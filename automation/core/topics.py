"""Subscription topics: the models of `journeys/topics.yaml` and how a customer's state is read. Pure.

A customer's state in a topic is their newest recorded choice; without one it is
the topic's default. In a topic with a double opt-in sign-up a yes counts only once
the customer followed the confirmation link, which expires after 7 days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from automation.core.declarations import editor_schema, refuse_repeats
from automation.core.statuses import Channel

#: The topic of every marketing journey that names none: existing journeys keep their behaviour.
MARKETING = "marketing"
#: How long a double opt-in request waits for its confirmation.
CONFIRM_WITHIN = dt.timedelta(days=7)
#: How a choice came to be recorded.
HOW = ("link", "one-click", "undo", "confirmation", "ingest", "api", "cli")
TOPIC_ID = r"^[a-z0-9][a-z0-9_\-]*$"


class Topic(BaseModel):
    """One topic customers may join or leave."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=TOPIC_ID, max_length=64)
    name: str = Field(min_length=1, description="Shown to customers in the preference centre.")
    description: str = Field("", description="Shown to customers under the name.")
    channel: Channel = Channel.EMAIL
    default: Literal["opt_in", "opt_out"] = Field(
        "opt_in", description="The state of a customer who never chose."
    )


BUILT_IN = Topic(
    id=MARKETING,
    name="Other marketing",
    description="Marketing messages that belong to no other topic.",
    default="opt_in",
)


class TopicsFile(BaseModel):
    """The `journeys/topics.yaml` file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topics: list[Topic] = Field(min_length=1)

    @field_validator("topics")
    @classmethod
    def _unique(cls, topics: list[Topic]) -> list[Topic]:
        refuse_repeats((t.id for t in topics), "duplicate topic id {!r}")
        return topics


def topics_json_schema() -> str:
    """The JSON Schema editors use to check `topics.yaml`."""
    return editor_schema(TopicsFile, "Subscription topics")


def with_built_in(topics: list[Topic]) -> dict[str, Topic]:
    """The topics by id, the built-in `marketing` one included unless the file redefines it."""
    return {MARKETING: BUILT_IN, **{t.id: t for t in topics}}


@dataclass(frozen=True)
class Choice:
    """A customer's newest choice in one topic."""

    subscribed: bool
    chosen_at: dt.datetime
    how: str
    confirmed_at: dt.datetime | None = None


def subscribed(topic: Topic, choice: Choice | None, double_opt_in: bool = False) -> bool:
    """Whether a customer is in the topic: their choice, else the topic's default.

    In a double opt-in topic a yes counts only once confirmed (the evidence GDPR and CASL ask for).
    """
    if choice is None:
        return topic.default == "opt_in" and not double_opt_in
    return choice.subscribed and (not double_opt_in or choice.confirmed_at is not None)


def confirmable(sent_at: dt.datetime, now: dt.datetime) -> bool:
    """Whether a double opt-in confirmation sent at `sent_at` may still be followed at `now`."""
    return dt.timedelta(0) <= now - sent_at < CONFIRM_WITHIN
