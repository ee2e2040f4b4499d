"""The new-campaign form's checks: a manual journey, a filter judged as the CLI judges `--where`,
the audience size, a few recipients and the first message, all before anything is launched."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from automation.campaigns import campaign as campaigns
from automation.core.filters import Filter
from automation.definitions.catalog import Catalog
from automation.enroll.kinds import kind_of
from automation.errors import UserError

SOURCE = "filter"


@dataclass
class Check:
    """What the form shows under the filter: the first problem, or the audience and a sample."""

    journey_id: str
    where_text: str
    campaign_id: str
    problem: str | None = None
    audience: int | None = None
    sample: list[campaigns.SampleRecipient] = field(default_factory=list)
    channel: str | None = None
    message: str | None = None
    where: Filter | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and self.audience is not None


def manual_journeys(catalog: Catalog | None) -> list[tuple[str, str]]:
    if catalog is None:
        return []
    return [
        (j.id, j.name) for j in sorted(catalog.active(), key=lambda j: j.id) if not kind_of(j).enrolls_at_tick
    ]


def check(
    sessions: sessionmaker[Session],
    catalog: Catalog | None,
    journey_id: str,
    where_text: str,
    campaign_id: str,
    *,
    now: dt.datetime,
    brand: str,
) -> Check:
    result = Check(journey_id, where_text, campaign_id)
    if catalog is None:
        result.problem = "the journeys folder has problems; see the overview"
        return result
    if journey_id not in dict(manual_journeys(catalog)):
        result.problem = f"choose a manual journey (known: {', '.join(dict(manual_journeys(catalog)))})"
        return result
    if len(campaign_id) > 128:
        result.problem = "a campaign id has 1 to 128 characters"
        return result
    try:
        result.where = campaigns.parse_filter_text(where_text, SOURCE) if where_text.strip() else None
        preview = campaigns.preview(
            sessions,
            catalog,
            journey_id,
            now=now,
            brand=brand,
            where=result.where,
            campaign_id=campaign_id or None,
        )
    except UserError as exc:
        result.problem = str(exc)
        return result
    except DBAPIError as exc:
        # A filter that loads and compiles but that the database still refuses to evaluate.
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        result.problem = f"{SOURCE}: the database cannot evaluate this filter: {reason}"
        return result
    result.audience = preview.audience_size
    result.sample = preview.sample
    result.message = preview.message
    sends = catalog.journeys[journey_id].send_steps()
    result.channel = sends[0][1].channel if sends else None
    return result
