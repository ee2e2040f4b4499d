"""Engagement conditions in SQL: what became of an earlier send of one enrollment.

`{step: reminder, opened: true}` asks whether the enrollment's delivery of step
`reminder` was opened; opens and clicks are written by the provider webhooks.
`reached` is also what reports count as delivered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, true
from sqlalchemy.orm import aliased

from automation.core import outcomes
from automation.core.statuses import DeliveryStatus
from automation.store.models import Delivery


def reached(d: Any) -> ColumnElement[bool]:
    """The message reached the recipient: the provider said delivered, or it was opened, clicked, ..."""
    flags = [getattr(d, flag).is_not(None) for flag in outcomes.REACHED_FLAGS]
    return or_(d.provider_status.in_(sorted(outcomes.DELIVERED)), *flags)


#: Feedback counted per journey: reached the recipient, refused by their server, spam, unsubscribed.
FEEDBACK = ("delivered", "bounced", "complained", "unsubscribed")


def feedback(d: Any) -> dict[str, ColumnElement[bool]]:
    """When a sent message of `d` (the ledger, or rows shaped like it) counts as each of `FEEDBACK`."""
    return {
        "delivered": reached(d),
        "bounced": d.provider_status.in_(sorted(outcomes.BOUNCED)),
        "complained": d.complained_at.is_not(None),
        "unsubscribed": d.unsubscribed_at.is_not(None),
    }


def _by(column: Any, as_of: dt.datetime | None) -> ColumnElement[bool]:
    return column.is_not(None) if as_of is None else column <= as_of


#: The SQL of each engagement question about one delivery `d`, as it stood at `as_of`.
ASKED: dict[str, Callable[[Any, dt.datetime | None], ColumnElement[bool]]] = {
    "sent": lambda d, as_of: and_(d.status == DeliveryStatus.SENT, _by(d.sent_at, as_of)),
    "delivered": lambda d, as_of: and_(reached(d), _by(d.sent_at, as_of)),
    "opened": lambda d, as_of: _by(d.opened_at, as_of),
    "clicked": lambda d, as_of: _by(d.clicked_at, as_of),
}


def condition(
    step_id: str, asked: str, wanted: bool, enrollment: Any, as_of: dt.datetime | None
) -> ColumnElement[bool]:
    """Whether the delivery of `step_id` in `enrollment` was `asked` (or, `wanted` false, was not)."""
    if enrollment is None:
        return false() if wanted else true()
    d = aliased(Delivery)
    found = exists().where(d.enrollment_id == enrollment, d.step_id == step_id, ASKED[asked](d, as_of))
    return found if wanted else ~found
