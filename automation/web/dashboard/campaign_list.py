"""Campaigns as the dashboard lists them: newest first, with who launched each and what it sent."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from automation.store.models import Campaign, Delivery
from automation.web.dashboard.paging import PAGE_SIZE, Page, newest_first


def campaigns(s: Session, after: str | None, size: int = PAGE_SIZE) -> Page[Campaign]:
    return newest_first(s, select(Campaign), Campaign.launched_at, Campaign.id, after, size)


def messages_by_status(s: Session, campaign_id: str) -> dict[str, int]:
    return {
        status: int(n)
        for status, n in s.execute(
            select(Delivery.status, func.count())
            .where(Delivery.campaign_id == campaign_id)
            .group_by(Delivery.status)
        )
    }
