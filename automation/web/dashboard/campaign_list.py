"""Campaigns as the dashboard lists them: newest first, with who launched each and what it sent."""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from automation.store.models import Campaign, Delivery
from automation.web.dashboard.paging import PAGE_SIZE, Cursor, Page, decode, page_of


def campaigns(s: Session, after: str | None, size: int = PAGE_SIZE) -> Page[Campaign]:
    stmt = select(Campaign)
    cursor = decode(after)
    if cursor is not None:
        stmt = stmt.where(
            or_(
                Campaign.launched_at < cursor.at,
                and_(Campaign.launched_at == cursor.at, Campaign.id < cursor.key),
            )
        )
    rows = list(s.scalars(stmt.order_by(Campaign.launched_at.desc(), Campaign.id.desc()).limit(size + 1)))
    return page_of(rows, size, lambda c: Cursor(c.launched_at, c.id))


def messages_by_status(s: Session, campaign_id: str) -> dict[str, int]:
    return {
        status: int(n)
        for status, n in s.execute(
            select(Delivery.status, func.count())
            .where(Delivery.campaign_id == campaign_id)
            .group_by(Delivery.status)
        )
    }
