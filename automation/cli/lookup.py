"""Finding the journey a command names; an unknown id gets a did-you-mean everywhere."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from automation.config import Settings
from automation.core.journeys import Journey
from automation.core.suggest import unknown
from automation.definitions.catalog import Catalog, check_catalog
from automation.errors import UserError
from automation.store.models import Delivery

JourneyArgument = Annotated[str, typer.Argument(metavar="JOURNEY", help="Journey id.")]
JourneyOption = Annotated[str | None, typer.Option(metavar="JOURNEY", help="Only this journey id.")]


def require_journey(catalog: Catalog, journey_id: str) -> Journey:
    """The journey of that id in the journeys folder."""
    journey = catalog.get(journey_id)
    if journey is None:
        raise UserError(unknown("journey", journey_id, catalog.journeys))
    return journey


def known_journey(sessions: sessionmaker[Session], folder: Iterable[str], journey_id: str) -> None:
    """Refuse an id that is neither in the journeys folder nor in the ledger (a removed journey)."""
    ids = set(folder)
    if journey_id in ids:
        return
    with sessions() as s:
        seen = set(s.scalars(select(Delivery.journey_id).distinct()))
    if journey_id not in seen:
        raise UserError(unknown("journey", journey_id, ids | seen))


def folder_journeys(settings: Settings) -> set[str]:
    """The ids of the journeys folder when it loads, else none (a report still reads the ledger)."""
    catalog, _ = check_catalog(settings.journeys_dir, settings.templates_dir)
    return set(catalog.journeys) if catalog is not None else set()
