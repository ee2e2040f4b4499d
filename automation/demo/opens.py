"""The demo's readers: some recipients open the emails that journeys branch on, as webhooks would say.

The outbox provider reports nothing back, so a journey that asks whether an
earlier email was opened would always take the same way. Here, each hour,
the emails just sent by a step that an engagement condition names are opened
by a fixed share of their recipients, chosen by the assignment hash of the
customer (the same seed, the same readers), and recorded through the same
path as the provider's signed webhooks. Emails no condition asks about are
left unopened, so the other journeys' figures do not change.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from automation.core import assignment
from automation.core.feedback import Feedback
from automation.core.journeys import Journey
from automation.core.statuses import DeliveryStatus
from automation.definitions.catalog import Catalog
from automation.store.models import Delivery
from automation.web import ledger

#: The share of recipients who open a watched email, per cent.
OPEN_RATE = 45.0
ARMS = (("opened", OPEN_RATE), ("unopened", 100 - OPEN_RATE))


def watched(journey: Journey) -> set[str]:
    """The send steps of the journey that an engagement condition asks about."""
    named: set[str] = set()
    for placed in journey.placed.values():
        condition = getattr(placed.step.body, "if_", None)
        if condition is None:
            continue
        named.update(node.engagement[0] for _, node in condition.nodes() if node.engagement is not None)
    return named


def open_sent(sessions: sessionmaker[Session], catalog: Catalog, now: dt.datetime) -> int:
    """Open the watched emails sent by `now` that their readers open, at `now`; returns how many.

    Called after each hour's deliveries, so an email is opened in the hour it was sent.
    """
    steps = [(j.id, sid) for j in catalog.active() for sid in sorted(watched(j))]
    if not steps:
        return 0
    with sessions.begin() as s:
        sent = s.execute(
            select(Delivery.id, Delivery.journey_id, Delivery.step_id, Delivery.customer_id).where(
                tuple_(Delivery.journey_id, Delivery.step_id).in_(steps),
                Delivery.status == DeliveryStatus.SENT,
                Delivery.channel == "email",
                Delivery.opened_at.is_(None),
            )
        ).all()
        opens = [
            Feedback("demo", f"demo-open-{d.id}", "open", now, delivery_id=d.id, opened=True)
            for d in sent
            if assignment.pick(d.journey_id, f"{d.step_id}/opens", d.customer_id, ARMS).arm == "opened"
        ]
        return len(ledger.record(s, opens, now))
