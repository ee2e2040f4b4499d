"""`automation customers show|export|forget ID`: one customer, seen, handed over, or erased."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from automation.cli.app import app, console, parse_now
from automation.cli.options import AsJson
from automation.cli.output import cell, print_json, print_table, table
from automation.config import load_settings
from automation.definitions.loader import load_topics
from automation.errors import UserError
from automation.insight import reporting
from automation.processes.runtime import build_runtime, open_database
from automation.store import erasure, export

customers_app = typer.Typer(help="Look at, export or erase customers.", no_args_is_help=True)
app.add_typer(customers_app, name="customers")

EVENTS = ("event", "count", "first_at", "last_at")
IN_FLIGHT = ("journey", "entered_at", "step", "waits_for", "until", "pending", "campaign")
TOPICS = ("topic", "state", "chosen_at", "how", "confirmed_at")
MESSAGES = ("id", "journey", "step", "channel", "status", "provider_status", "due_at", "sent_at", "reason")


@customers_app.command("show")
def show(
    customer_id: Annotated[str, typer.Argument(metavar="ID", help="The customer id.")],
    messages: Annotated[int, typer.Option(min=1, metavar="N", help="How many recent messages to list.")] = 10,
    as_json: AsJson = False,
) -> None:
    """Traits, order facts, topics, where the customer is in each journey, and the last messages."""
    runtime = build_runtime(load_settings())
    settings = runtime.settings
    report = reporting.customer(runtime.sessions, customer_id, messages, runtime.catalog)
    if as_json:
        print_json(asdict(report))
        return
    traits = table("trait", "value", title=f"Customer {report.customer_id}")
    traits.show_header = False
    for name, value in {**report.traits, **report.facts}.items():
        traits.add_row(name, cell(value))
    print_table(traits)
    sections = (
        ("Topics", TOPICS, topic_rows(report.topics, settings.journeys_dir)),
        ("Events", EVENTS, report.events),
        ("Journeys in flight", IN_FLIGHT, report.in_flight),
        ("Last messages", MESSAGES, report.messages),
    )
    for title, columns, rows in sections:
        if not rows:
            console.print(f"{title}: none", highlight=False)
            continue
        out = table(*columns, title=title)
        for row in rows:
            out.add_row(*(cell(row[c]) for c in columns))
        print_table(out)


def topic_rows(chosen: dict[str, dict[str, Any]], journeys_dir: Path) -> list[dict[str, Any]]:
    """Every defined topic with the customer's state: their choice, else the topic's default."""
    topics, _ = load_topics(journeys_dir)
    rows = []
    for topic_id in [*topics, *sorted(chosen.keys() - topics.keys())]:
        choice = chosen.get(topic_id)
        if choice is None:
            state = "on" if topics[topic_id].default == "opt_in" else "off"
            rows.append({"topic": topic_id, "state": state, "how": "default"})
            continue
        state = "on" if choice["subscribed"] else "off"
        rows.append({"topic": topic_id, "state": state, **{k: choice[k] for k in TOPICS[2:]}})
    return [{k: row.get(k) for k in TOPICS} for row in rows]


CustomerId = Annotated[str, typer.Argument(metavar="ID", help="The customer id.")]


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
