"""`automation status`: what each journey did over a time range."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from automation.cli.app import app, console
from automation.config import load_settings
from automation.core.records import RecordError, parse_instant
from automation.core.statuses import REPORTED
from automation.insight import reporting
from automation.processes.runtime import build_runtime


def _instant(value: str | None, flag: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return parse_instant(value, flag)
    except RecordError as exc:
        raise typer.BadParameter(str(exc)) from None


def stats_table(rows: list[reporting.JourneyStats], title: str) -> Table:
    table = Table(title=title, title_justify="left", padding=(0, 1, 0, 0))
    table.add_column("journey")
    table.add_column("active", justify="right")
    for status_name in REPORTED:
        table.add_column(status_name, justify="right")
    for name in ("opened", "clicked", "converted", "rate", "goal exits"):
        table.add_column(name, justify="right")
    for r in rows:
        rate = f"{r.conversion_rate:.0%}" if r.conversion_rate is not None else "-"
        table.add_row(
            r.journey_id,
            str(r.active),
            *(str(r.deliveries.get(name, 0)) for name in REPORTED),
            str(r.opened),
            str(r.clicked),
            str(r.conversions) if r.goal else "-",
            rate if r.goal else "-",
            str(r.goal_exits) if r.goal else "-",
        )
    return table


def print_table(table: Table) -> None:
    """A table at its natural width; off a terminal rich would squeeze it into 80 columns."""
    (console if console.is_terminal else Console(width=200, soft_wrap=True)).print(table)


@app.command()
def status(
    since: Annotated[str | None, typer.Option(help="Deliveries due from this ISO 8601 instant.")] = None,
    until: Annotated[str | None, typer.Option(help="Deliveries due before this ISO 8601 instant.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Per journey: active enrollments, deliveries by status, opens, clicks and conversions."""
    start, end = _instant(since, "--since"), _instant(until, "--until")
    runtime = build_runtime(load_settings())
    rows = reporting.status(runtime.sessions, runtime.catalog, start, end)
    if as_json:
        payload = {
            "since": start.isoformat() if start else None,
            "until": end.isoformat() if end else None,
            "journeys": [r.as_dict() for r in rows],
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    span = f"{start.isoformat() if start else 'the beginning'} to {end.isoformat() if end else 'now'}"
    print_table(stats_table(rows, f"Deliveries due from {span}"))
    console.print(
        "converted: enrollments with a sent message followed by the journey's goal event within its window; "
        "rate = converted / enrollments sent to",
        highlight=False,
    )
