"""`automation deliveries list|retry`: the delivery ledger, and re-sending what a fix now allows."""

from __future__ import annotations

from typing import Annotated

import typer

from automation.cli.app import app, console, err_console, parse_at, parse_now
from automation.cli.delivering import enqueue_new
from automation.cli.lookup import JourneyOption, folder_journeys, known_journey
from automation.cli.options import AsJson, instant
from automation.cli.output import cell, print_json, print_table, table, when
from automation.config import load_settings
from automation.core.outcomes import WORDS
from automation.core.statuses import REPORTED
from automation.deliver import retry as retries
from automation.errors import UserError
from automation.insight import reporting
from automation.processes.runtime import build_runtime, open_database

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


def _choice(value: str | None, what: str, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise UserError(f"unknown {what} {value!r} (one of {', '.join(allowed)})")


@deliveries_app.command("list")
def list_(
    customer: Annotated[str | None, typer.Option(metavar="ID", help="Only this customer id.")] = None,
    journey: JourneyOption = None,
    status: Annotated[
        str | None,
        typer.Option(metavar="STATUS", help=f"Only this status: {', '.join(REPORTED)}."),
    ] = None,
    provider_status: Annotated[
        str | None,
        typer.Option(metavar="WORD", help=f"Only what the provider said: {', '.join(WORDS)}."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, metavar="N", help="At most this many rows.")] = 50,
    as_json: AsJson = False,
) -> None:
    """Deliveries with our status and reason and what the provider said, newest due first."""
    _choice(status, "status", REPORTED)
    _choice(provider_status, "provider status", WORDS)
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


def _selection(
    ids: list[int] | None, journey: str | None, status: str | None, since: str | None
) -> retries.Selection:
    """The ids, or all three of --journey, --status and --since; never both kinds."""
    if ids and (journey, status, since) != (None, None, None):
        raise UserError("give delivery ids, or --journey, --status and --since; not both")
    if ids:
        return retries.Selection(ids=ids)
    if journey is None or status is None or since is None:
        raise UserError("give delivery ids, or all of --journey, --status and --since")
    _choice(status, "status to retry", retries.RETRYABLE)
    return retries.Selection(journey_id=journey, status=status, since=parse_at(since, "--since"))


@deliveries_app.command("retry")
def retry(
    ids: Annotated[list[int] | None, typer.Argument(metavar="ID...", help="Delivery ids to retry.")] = None,
    journey: JourneyOption = None,
    status: Annotated[
        str | None, typer.Option(metavar="STATUS", help="With --journey: failed or skipped.")
    ] = None,
    since: Annotated[str | None, instant("With --journey: rows due from this instant.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be retried; send nothing.")
    ] = False,
    now: Annotated[str | None, instant("Retry as of this instant (default: now).")] = None,
) -> None:
    """Make a new delivery, due now, for each failed or skipped row whose cause is fixed (once per row).

    The new messages are judged by every rule again (consent, suppression, quiet
    hours, caps) when a worker takes them.
    """
    selection = _selection(ids, journey, status, since)
    at = parse_now(now)
    settings = load_settings()
    runtime = build_runtime(settings)
    if journey is not None:
        known_journey(runtime.sessions, runtime.catalog.journeys, journey)
    result = retries.retry(runtime.sessions, runtime.catalog, selection, at, dry_run=dry_run)
    for _, reason in result.refused:
        err_console.print(f"not retried: {reason}", highlight=False, markup=False)
    if dry_run:
        out = table("ID", "Journey", "Step", "Customer", "Status", "Reason", right=("ID",))
        for c in result.candidates:
            out.add_row(str(c.id), c.journey_id, c.step_id, c.customer_id, c.status, c.reason or "")
        print_table(out)
        console.print(f"dry run: {len(result.candidates)} deliveries would be retried; nothing sent")
        return
    console.print(
        f"retried {len(result.made)} deliveries as new ones due at {at.isoformat()}"
        + (f" (ids {', '.join(str(q.id) for q in result.made)})" if result.made else "")
    )
    if result.made:
        enqueue_new(settings, runtime, result.made)
    if result.refused and not result.made:
        raise typer.Exit(1)
