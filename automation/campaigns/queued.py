"""Campaigns launched from the dashboard: recorded at once, their audience enrolled by the scheduler.

The web request only records the campaign as `enrolling`, with its filter and
the count the editor confirmed, so a big audience never holds the request.
Each tick then enrolls up to `CHUNKS_PER_TICK` chunks of it: per chunk one
transaction that locks the campaign row (a cancel waits for it, or is seen by
it), enrolls the next keyset page of customer ids and stores the last one in
`enrolled_through`, so a crash resumes after the last commit. The campaign id
is the enrollments' occurrence key, as for `launch`: nobody enters twice, and
a second request with the same id (a double submit) records nothing new.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from automation.campaigns import campaign as campaigns
from automation.core.filters import Filter
from automation.core.statuses import CampaignStatus
from automation.definitions.catalog import Catalog
from automation.store.models import Campaign, Customer

log = logging.getLogger("automation.campaigns.queued")

CHUNKS_PER_TICK = 10


def request(
    s: Session,
    catalog: Catalog,
    journey_id: str,
    *,
    now: dt.datetime,
    launched_by: str,
    where: Filter | None,
    campaign_id: str,
    confirmed: int | None,
) -> tuple[str, bool]:
    """Record the campaign for the ticks to enroll: its id, and False when it was recorded already.

    An empty `campaign_id` gets one made of the journey and `now`. Raises
    `CampaignError` as `launch` does (unknown or disabled journey, an id of
    another journey's campaign or of a cancelled one).
    """
    journey = campaigns.get_journey(catalog, journey_id)
    cid = campaigns.campaign_id_for(journey, campaign_id, now)
    existed = campaigns.open_campaign(
        s,
        journey,
        cid,
        launched_by,
        now,
        campaigns.describe(where),
        status=CampaignStatus.ENROLLING,
        confirmed=confirmed,
    )
    return cid, not existed


def _chunk(s: Session, catalog: Catalog, campaign_id: str, now: dt.datetime) -> tuple[str, int] | None:
    """Enroll the campaign's next page; its journey and how many entered, None once nothing is left."""
    row = s.scalars(select(Campaign).where(Campaign.id == campaign_id).with_for_update()).one()
    if row.status != CampaignStatus.ENROLLING:
        return None
    journey = campaigns.get_journey(catalog, row.journey_id)
    described = row.filter or {}
    where = Filter.model_validate(described["where"]) if described.get("where") else None
    conds = campaigns.conditions(journey, where, now)
    after = row.enrolled_through or ""
    ids = list(
        s.scalars(
            select(Customer.id)
            .where(*conds, Customer.id > after)
            .order_by(Customer.id)
            .limit(campaigns.CHUNK)
        )
    )
    if not ids:
        row.status = CampaignStatus.LAUNCHED
        return None
    scope = [*conds, Customer.id >= ids[0], Customer.id <= ids[-1]]
    rate = described.get("rate_per_s")
    entered = campaigns.enroll_chunk(s, journey, row.id, ids, scope, row.audience_size, now, rate)
    row.audience_size += entered
    row.enrolled_through = ids[-1]
    return journey.id, entered


def enroll_pending(
    sessions: sessionmaker[Session], catalog: Catalog, now: dt.datetime, chunks: int = CHUNKS_PER_TICK
) -> dict[str, int]:
    """Enroll up to `chunks` pages of the campaigns still enrolling, oldest first; entrants per journey."""
    with sessions() as s:
        pending = list(
            s.scalars(
                select(Campaign.id)
                .where(Campaign.status == CampaignStatus.ENROLLING)
                .order_by(Campaign.launched_at, Campaign.id)
            )
        )
    entered: dict[str, int] = {}
    for campaign_id in pending:
        while chunks > 0:
            try:
                with sessions.begin() as s:
                    done = _chunk(s, catalog, campaign_id, now)
            except campaigns.CampaignError as exc:
                log.error("campaign %s cannot be enrolled now: %s", campaign_id, exc)
                break
            if done is None:
                break
            chunks -= 1
            journey_id, n = done
            entered[journey_id] = entered.get(journey_id, 0) + n
    return entered
