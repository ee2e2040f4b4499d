"""`automation customers show|export|forget ID`: one customer, seen, handed over, or erased."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from automation.cli.app import app, console, parse_now
from automation.cli.status_cmd import print_table
from automation.config import load_settings
from automation.errors import UserError
from automation.insight import reporting
from automation.processes.runtime import build_runtime, open_database
from automation.store import erasure, export

customers_app = typer.Typer(help="Look at, export or erase customers.", no_args_is_help=True)
app.add_typer(customers_app, name="customers")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


@customers_app.command("show")
def show(
    customer_id: Annotated[str, typer.Argument(help="The customer id.")],
    messages: Annotated[int, typer.Option(help="How many recent messages to list.")] = 10,
) -> None:
    """Traits, order facts, journeys in flight (next step and time) and the last messages."""
    runtime = build_runtime(load_settings())
    report = reporting.customer(runtime.sessions, customer_id, messages)
    traits = Table(title=f"Customer {report.customer_id}", title_justify="left", show_header=False)
    traits.add_column("trait")
    traits.add_column("value")
    for name, value in {**report.traits, **report.facts}.items():
        traits.add_row(name, _fmt(value))
    print_table(traits)
    if report.events:
        events = Table(title="Events", title_justify="left")
        for col in ("event", "count", "first_at", "last_at"):
            events.add_column(col)
        for e in report.events:
            events.add_row(*(_fmt(e[c]) for c in ("event", "count", "first_at", "last_at")))
        print_table(events)
    flight = Table(title="Journeys in flight", title_justify="left")
    for col in ("journey", "entered_at", "next_step", "next_at", "campaign"):
        flight.add_column(col)
    for e in report.in_flight:
        flight.add_row(*(_fmt(e[c]) for c in ("journey", "entered_at", "next_step", "next_at", "campaign")))
    if report.in_flight:
        print_table(flight)
    else:
        console.print("Journeys in flight: none")
    recent = Table(title="Last messages", title_justify="left")
    cols = ("id", "journey", "step", "channel", "status", "due_at", "sent_at", "reason")
    for col in cols:
        recent.add_column(col)
    for d in report.messages:
        recent.add_row(*(_fmt(d[c]) for c in cols))
    if report.messages:
        print_table(recent)
    else:
        console.print("Last messages: none")


CustomerId = Annotated[str, typer.Argument(help="The customer id.")]


@customers_app.command("export")
def export_(customer_id: CustomerId) -> None:
    """Print one JSON document with everything held about the customer."""
    _, sessions = open_database(load_settings())
    with sessions() as s:
        document = export.export(s, customer_id)
    if document is None:
        raise UserError(f"nothing is held about customer {customer_id}")
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")


@customers_app.command("forget")
def forget(
    customer_id: CustomerId,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase the customer's personal data; delivery counts stay, suppressions stay hashed."""
    if not yes:
        if not sys.stdin.isatty():
            raise UserError("forget erases data for good: confirm with --yes")
        typer.confirm(f"Erase everything held about customer {customer_id}?", abort=True)
    _, sessions = open_database(load_settings())
    with sessions.begin() as s:
        done = erasure.forget(s, customer_id, parse_now(None))
    if not done.anything:
        console.print(f"nothing held about customer {customer_id}: nothing to erase", highlight=False)
        return
    console.print(f"erased customer {customer_id}:", highlight=False, markup=False)
    for line in done.lines():
        console.print(f"  {line}", highlight=False, markup=False)
