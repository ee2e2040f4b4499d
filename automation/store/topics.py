"""Customers' topic choices: recorded with when and how, newest wins, and undoable for a day.

A choice older than the one on file changes nothing, whatever the order in
which records arrive (an ingest file of last month after a click today).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from automation.core import judging
from automation.core.journeys import Journey
from automation.core.records import Identify
from automation.core.statuses import Channel
from automation.core.topics import Choice
from automation.definitions.catalog import Catalog
from automation.store.models import PreferenceUndo, TopicChoice
from automation.store.sqlutil import insert_for

#: How long after leaving the same link offers to undo it.
UNDO_WITHIN = dt.timedelta(hours=24)


def record(
    s: Session,
    customer_id: str,
    choices: dict[str, bool],
    at: dt.datetime,
    how: str,
    confirmed_at: dt.datetime | None = None,
) -> None:
    """Record the choices made at `at`; each replaces the one on file only if it is not older."""
    if not choices:
        return
    rows = [
        {
            "customer_id": customer_id,
            "topic": topic,
            "subscribed": yes,
            "chosen_at": at,
            "how": how,
            "confirmed_at": confirmed_at if yes else None,
        }
        for topic, yes in choices.items()
    ]
    stmt = insert_for(s, TopicChoice.__table__).values(rows)
    table = TopicChoice.__table__.c
    s.execute(
        stmt.on_conflict_do_update(
            index_elements=["customer_id", "topic"],
            set_={k: stmt.excluded[k] for k in ("subscribed", "chosen_at", "how", "confirmed_at")},
            where=table.chosen_at <= stmt.excluded.chosen_at,
        )
    )


def admits(catalog: Catalog, journey: Journey, channel: Channel, choices: dict[str, Choice]) -> bool:
    """Whether a customer with these choices is in the journey's topic for a send on `channel`."""
    topic = journey.topic_id
    if topic is None:
        return True
    return judging.in_topic(
        journey, channel, catalog.topics.get(topic), choices.get(topic), catalog.double_opt_in(topic)
    )


def record_identifies(s: Session, records: Iterable[object], how: str) -> None:
    """The `topics` trait of each identify record, chosen at the record's timestamp."""
    for rec in records:
        if isinstance(rec, Identify) and rec.topics:
            record(s, rec.customer_id, rec.topics, rec.timestamp, how)


def of(s: Session, customer_ids: Collection[str]) -> dict[str, dict[str, Choice]]:
    """Each customer's choices by topic."""
    found: dict[str, dict[str, Choice]] = {}
    if not customer_ids:
        return found
    for row in s.scalars(select(TopicChoice).where(TopicChoice.customer_id.in_(list(customer_ids)))):
        found.setdefault(row.customer_id, {})[row.topic] = Choice(
            row.subscribed, row.chosen_at, row.how, row.confirmed_at
        )
    return found


def _snapshot(choices: dict[str, Choice], topics: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for topic in topics:
        c = choices.get(topic)
        out[topic] = (
            None
            if c is None
            else {
                "subscribed": c.subscribed,
                "chosen_at": c.chosen_at.isoformat(),
                "how": c.how,
                "confirmed_at": c.confirmed_at.isoformat() if c.confirmed_at else None,
            }
        )
    return out


def leave(
    s: Session, delivery_id: int, customer_id: str, topics: Collection[str], at: dt.datetime, how: str
) -> None:
    """Switch the topics off, keeping what the customer had before so this link can undo it."""
    before = of(s, [customer_id]).get(customer_id, {})
    forget_undo(s, delivery_id)
    s.add(
        PreferenceUndo(
            delivery_id=delivery_id, customer_id=customer_id, left_at=at, previous=_snapshot(before, topics)
        )
    )
    record(s, customer_id, dict.fromkeys(topics, False), at, how)


def undoable(s: Session, delivery_id: int, customer_id: str, now: dt.datetime) -> PreferenceUndo | None:
    """The leaving this link may still undo at `now`."""
    undo = s.get(PreferenceUndo, delivery_id)
    if undo is None or undo.customer_id != customer_id or now - undo.left_at >= UNDO_WITHIN:
        return None
    return undo


def undo(s: Session, undo_row: PreferenceUndo) -> None:
    """Restore exactly the choices held before leaving: the same states, times and ways."""
    for topic, before in undo_row.previous.items():
        where = (TopicChoice.customer_id == undo_row.customer_id, TopicChoice.topic == topic)
        s.execute(delete(TopicChoice).where(*where))
        if before is not None:
            s.add(
                TopicChoice(
                    customer_id=undo_row.customer_id,
                    topic=topic,
                    subscribed=before["subscribed"],
                    chosen_at=dt.datetime.fromisoformat(before["chosen_at"]),
                    how=before["how"],
                    confirmed_at=(
                        dt.datetime.fromisoformat(before["confirmed_at"]) if before["confirmed_at"] else None
                    ),
                )
            )
    s.delete(undo_row)


def forget_undo(s: Session, delivery_id: int) -> None:
    """A new choice from the link supersedes the undo of an earlier leaving."""
    s.execute(delete(PreferenceUndo).where(PreferenceUndo.delivery_id == delivery_id))
