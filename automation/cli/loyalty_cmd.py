"""`automation loyalty ...`: the programme's schema, and customers' points and tiers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from automation.cli.app import app, console, err_console, parse_now
from automation.cli.options import AsJson
from automation.cli.output import cell, print_json, print_table, table
from automation.config import load_settings
from automation.core.programme import loyalty_json_schema
from automation.definitions.loader import LOYALTY_FILE, load_programme_file
from automation.errors import JourneyError, UserError
from automation.loyalty import operations
from automation.loyalty.replay import replay
from automation.processes.runtime import build_runtime

loyalty_app = typer.Typer(
    help="The loyalty programme (loyalty.yaml): points and tiers.", no_args_is_help=True
)
app.add_typer(loyalty_app, name="loyalty")


@loyalty_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of loyalty.yaml (for editors)."""
    typer.echo(loyalty_json_schema(), nl=False)


@loyalty_app.command("show")
def show(
    customer_id: Annotated[str, typer.Argument(metavar="ID", help="The customer id.")],
    as_json: AsJson = False,
) -> None:
    """Balance, pending points, lots and their expiry, tier and progress, and the last transactions."""
    runtime = build_runtime(load_settings())
    with runtime.sessions() as session:
        report = operations.summary(session, runtime.catalog.programme, customer_id, parse_now(None))
    if as_json:
        print_json(report)
        return
    head = table("", "value", title=f"Loyalty of {customer_id}")
    head.show_header = False
    for name in ("points", "pending_points", "debt", "tier", "next_tier", "to_next_tier", "tier_review_at"):
        if name in report:
            head.add_row(name, cell(report[name]))
    print_table(head)
    for title, rows in (("Lots", report["lots"]), ("Last transactions", report["transactions"])):
        if not rows:
            console.print(f"{title}: none", highlight=False)
            continue
        out = table(*rows[0], title=title)
        for row in rows:
            out.add_row(*(cell(v) for v in row.values()))
        print_table(out)


# A negative POINTS (-50) is an argument, not an unknown option.
@loyalty_app.command("adjust", context_settings={"ignore_unknown_options": True})
def adjust(
    customer_id: Annotated[str, typer.Argument(metavar="ID", help="The customer id.")],
    points: Annotated[int, typer.Argument(metavar="POINTS", help="Points to add (negative: to take).")],
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why, kept with the transaction.")],
    key: Annotated[str, typer.Option("--key", metavar="KEY", help="Idempotency key: a key is applied once.")],
) -> None:
    """Add or take points by hand, once per --key."""
    runtime = build_runtime(load_settings())
    made = operations.adjust(
        runtime.sessions, runtime.catalog.programme, customer_id, points, reason, key, parse_now(None)
    )
    if made:
        console.print(f"{customer_id}: adjusted by {points} points ({key})", highlight=False)
    else:
        console.print(
            f"{customer_id}: adjustment {key!r} was already applied; nothing changed", highlight=False
        )


@loyalty_app.command("recompute")
def recompute(
    customer: Annotated[
        str | None, typer.Option("--customer", metavar="ID", help="Only this customer.")
    ] = None,
) -> None:
    """Rebuild the ledger and tiers from the events and report any difference from what is stored."""
    runtime = build_runtime(load_settings())
    programme = runtime.catalog.programme
    if programme is None:
        raise UserError("no loyalty programme: journeys/loyalty.yaml is absent")
    if programme.points is None:
        raise UserError("no loyalty programme: journeys/loyalty.yaml defines no `points`")
    found, customers = [], 0
    for rebuilt, stored in replay(runtime.sessions, programme, parse_now(None), customer):
        customers += 1
        found += operations.differences(rebuilt, stored)
    for line in found:
        err_console.print(line, highlight=False, markup=False)
    console.print(f"recomputed {customers} customers: {len(found) or 'no'} differences", highlight=False)
    if found:
        raise typer.Exit(1)


@loyalty_app.command("simulate")
def simulate(
    file: Annotated[
        Path | None,
        typer.Option("--file", metavar="FILE", help="A changed loyalty.yaml (default: the folder's)."),
    ] = None,
) -> None:
    """Dry-run a changed programme against today's data: tier moves and points issued; nothing is written."""
    settings = load_settings()
    changed, problems = load_programme_file(file or settings.journeys_dir / LOYALTY_FILE)
    if problems or changed is None:
        raise JourneyError(problems or [f"{file}:1:1: not found"])
    runtime = build_runtime(settings)
    result = operations.simulate(runtime.sessions, changed, parse_now(None))
    console.print(
        f"{result.customers} customers: {result.up} would move up a tier, {result.down} down; "
        f"points issued {result.points_then} (now {result.points_now}, "
        f"{result.points_then - result.points_now:+d}); nothing written",
        highlight=False,
    )
