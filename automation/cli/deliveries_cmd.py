"""`automation deliveries list|retry`: the delivery ledger, and re-sending what a fix now allows."""

from __future__ import annotations

from typing import Annotated

import typer

from automation.cli.app import app, console
from automation.cli.lookup import JourneyOption, folder_journeys, known_journey
from automation.cli.output import cell, print_json, print_table, table, when
from automation.config import load_settings
from automation.core.outcomes import WORDS
from automation.errors import UserError
from automation.insight import reporting
from automation.processes.runtime import open_database

deliveries_app = typer.Typer(help="The delivery ledger: every message and its outcome.", no_args_is_help=True)
app.add_typer(deliveries_app, name="deliveries")

COLUMNS = (
    "ID",
    "Due (UTC)",
    "Journey",
    "Step",
    "Customer",
    "Channel",
    "Status",
    "Provider",
    "Reason",
    "Tries",
)


def _choice(value: str | None, flag: str, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise UserError(f"{flag}: unknown value {value!r} (one of {', '.join(allowed)})")


@deliveries_app.command("list")
def list_(
    customer: Annotated[str | None, typer.Option(metavar="ID", help="Only this customer id.")] = None,
    journey: JourneyOption = None,
    status: Annotated[
        str | None,
        typer.Option(metavar="STATUS", help=f"Only this status: {', '.join(reporting.STATUSES)}."),
    ] = None,
    provider_status: Annotated[
        str | None,
        typer.Option(metavar="WORD", help=f"Only what the provider said: {', '.join(WORDS)}."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, metavar="N", help="At most this many rows.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Deliveries with our status and reason and what the provider said, newest due first."""
    _choice(status, "--status", reporting.STATUSES)
    _choice(provider_status, "--provider-status", WORDS)
    settings = load_settings()
    _, sessions = open_database(settings)
    if journey is not None:
        known_journey(sessions, folder_journeys(settings), journey)
    rows = reporting.deliveries(
        sessions,
        customer_id=customer,
        journey_id=journey,
        status=status,
        provider_status=provider_status,
        limit=limit,
    )
    if as_json:
        print_json({"deliveries": rows})
        return
    out = table(*COLUMNS, right=("ID", "Tries"))
    for d in rows:
        out.add_row(
            str(d["id"]),
            when(d["due_at"]),
            d["journey"],
            d["step"],
            d["customer"],
            d["channel"],
            d["status"],
            cell(d["provider_status"]),
            d["reason"] or "",
            str(d["attempts"]),
        )
    print_table(out)
    console.print(f"{len(rows)} deliveries shown")
