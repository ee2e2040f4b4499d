"""`automation demo`: the whole product on the embedded default, in simulated time."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated

import typer

from automation.cli.app import app, console
from automation.cli.experiments_cmd import print_result
from automation.cli.status_cmd import print_stats
from automation.core.statuses import DeliveryStatus
from automation.demo import DayReport, run_demo
from automation.demo.data import MIXED, topic_choices


def _day(report: DayReport) -> None:
    console.print(
        f"day {report.day:2d}  {report.date.isoformat()}  {report.records:4d} records in  "
        f"{report.enrolled:4d} enrolled  {report.deliveries:4d} messages made",
        highlight=False,
    )


@app.command()
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", metavar="DIR", help="Where the SQLite file and outbox go.")
    ] = Path("demo-output"),
    customers: Annotated[
        int, typer.Option(min=20, max=5000, metavar="N", help="How many customers to generate.")
    ] = 300,
    days: Annotated[
        int, typer.Option(min=3, max=60, metavar="N", help="Simulated days, ticked every hour.")
    ] = 14,
    seed: Annotated[int, typer.Option(metavar="N", help="Random seed for the generated customers.")] = 7,
) -> None:
    """Run every shipped journey on generated customers: SQLite, in-process broker, outbox files.

    Needs no PostgreSQL, no Redis and no provider account; never sends real messages.
    """
    began = time.monotonic()
    # The demo tells its story per day; the workers' line per message would drown it.
    logging.getLogger("automation.deliver").setLevel(logging.WARNING)
    console.print(f"generating {customers} customers and simulating {days} days of hourly ticks...")
    result = run_demo(directory, customers=customers, days=days, seed=seed, on_day=_day)
    console.print(
        f"\n{result.customers} customers, {result.records} records ingested, {result.ticks} ticks "
        f"from {result.since:%Y-%m-%d} to {result.until:%Y-%m-%d}; campaigns launched: "
        f"{', '.join(result.campaigns) or 'none'}",
        highlight=False,
    )
    print_stats(result.stats, "What each journey did (the same as `automation status` on its database)")
    for experiment in result.experiments:
        console.print(
            f"The experiment of {experiment.journey_id} "
            f"(the same as `automation experiments show {experiment.journey_id}`)",
            highlight=False,
        )
        print_result(experiment)
    mixed = f"cust-{MIXED:04d}"
    choices = ", ".join(f"{t} {'on' if yes else 'off'}" for t, yes in topic_choices(MIXED).items())
    silent = [s.journey_id for s in result.stats if not s.deliveries.get(DeliveryStatus.SENT)]
    if silent:
        console.print(f"journeys that sent nothing: {', '.join(silent)}", highlight=False)
    console.print(
        f"rendered messages: {result.emails} emails in {result.outbox / 'email'}, "
        f"{result.sms} SMS in {result.outbox / 'sms'}\n"
        f"database: {result.database} (try: DATABASE_URL=sqlite:///{result.database} automation status)\n"
        f"a customer with mixed topic choices, {mixed} ({choices}): "
        f"DATABASE_URL=sqlite:///{result.database} automation customers show {mixed}\n"
        f"done in {time.monotonic() - began:.1f} s",
        highlight=False,
    )
