"""Every campaign with who launched it, when, its audience and what became of its messages."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from automation.core.statuses import REPORTED
from automation.insight.reporting import FEEDBACK, delivery_counts
from automation.store.models import Campaign, Delivery


@dataclass
class CampaignSummary:
    id: str
    journey_id: str
    launched_by: str
    launched_at: dt.datetime
    status: str
    audience_size: int
    cancelled_at: dt.datetime | None
    filter: dict[str, Any] | None
    deliveries: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REPORTED, 0))
    feedback: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FEEDBACK, 0))
    opened: int = 0
    clicked: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def campaigns(sessions: sessionmaker[Session]) -> list[CampaignSummary]:
    """Every campaign, newest launch first, with its messages counted by status and feedback."""
    with sessions() as s:
        out = {
            c.id: CampaignSummary(
                c.id,
                c.journey_id,
                c.launched_by,
                c.launched_at,
                c.status,
                c.audience_size,
                c.cancelled_at,
                c.filter,
            )
            for c in s.scalars(select(Campaign).order_by(Campaign.launched_at.desc(), Campaign.id))
        }
        counts = s.execute(delivery_counts(Delivery.campaign_id, Delivery.campaign_id.in_(list(out))))
        for cid, status, count, opened, clicked, *feedback in counts:
            row = out[str(cid)]
            row.deliveries[status.reported] += count
            row.opened += opened
            row.clicked += clicked
            for name, n in zip(FEEDBACK, feedback, strict=True):
                row.feedback[name] += n
    return list(out.values())
