"""`automation status`: what each journey did over a time range."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from rich.table import Table

from automation.cli.app import app, console, parse_at
from automation.cli.lookup import JourneyOption, known_journey
from automation.cli.options import AsJson, instant
from automation.cli.output import print_json, print_table, table
from automation.config import load_settings
from automation.core.statuses import REPORTED, DeliveryStatus
from automation.insight import reporting
from automation.processes.runtime import build_runtime

COLUMNS = REPORTED
FEEDBACK = ("opened", "clicked", "converted", "rate", "goal exits", "coupons redeemed")


def _instant(value: str | None, flag: str) -> dt.datetime | None:
    return parse_at(value, flag) if value is not None else None


def _share(count: int, rate: float | None) -> str:
    return f"{count} ({rate:.1%})" if rate is not None else str(count)


def messages_table(rows: list[reporting.JourneyStats], title: str) -> Table:
    """Active enrollments and the messages due in the range, by our status."""
    out = table("journey", "active", *COLUMNS, title=title, right=("active", *COLUMNS))
    for r in rows:
        active = f"{r.active} paused" if r.paused else str(r.active)
        out.add_row(r.journey_id, active, *(str(r.deliveries.get(name, 0)) for name in COLUMNS))
    return out


def feedback_table(rows: list[reporting.JourneyStats]) -> Table:
    """What the providers said about the messages sent (shares of sent), and conversions."""
    numbers = ("sent", *reporting.FEEDBACK, *FEEDBACK)
    out = table("journey", *numbers, title="What the providers said (share of sent)", right=numbers)
    for r in rows:
        rate = f"{r.conversion_rate:.0%}" if r.conversion_rate is not None else "-"
        out.add_row(
            r.journey_id,
            str(r.deliveries.get(DeliveryStatus.SENT, 0)),
            *(_share(r.feedback[name], r.rate(name)) for name in reporting.FEEDBACK),
            str(r.opened),
            str(r.clicked),
            str(r.conversions) if r.goal else "-",
            rate if r.goal else "-",
            str(r.goal_exits) if r.goal else "-",
            str(r.coupons_redeemed),
        )
    return out


STEP_COUNTS = ("waiting", "messages", "sent", "opened", "clicked")


def steps_table(rows: list[reporting.JourneyStats]) -> Table:
    """The funnel: per journey its entrants, then per step (nested by position) who waits and what went."""
    out = table("journey", "step", "kind", *STEP_COUNTS, title="Per step", right=STEP_COUNTS)
    for r in rows:
        out.add_row(r.journey_id, f"entered: {r.entered}", "", *([""] * len(STEP_COUNTS)))
        for step in r.steps:
            sends = step.kind == "send"
            counts = (
                str(step.waiting),
                str(sum(step.messages.values())) if sends else "",
                str(step.sent) if sends else "",
                str(step.opened) if sends else "",
                str(step.clicked) if sends else "",
            )
            indent = "  " * (step.number.count(".") // 2)
            out.add_row("", f"{indent}{step.number} {step.id}", step.kind, *counts)
    return out


def print_stats(rows: list[reporting.JourneyStats], title: str) -> None:
    """The tables of `automation status` (the demo prints the same)."""
    print_table(messages_table(rows, title))
    print_table(feedback_table(rows))
    print_table(steps_table(rows))


@app.command()
def status(
    since: Annotated[str | None, instant("Deliveries due from this instant.")] = None,
    until: Annotated[str | None, instant("Deliveries due before this instant.")] = None,
    journey: JourneyOption = None,
    as_json: AsJson = False,
) -> None:
    """Per journey: active enrollments, deliveries by status, provider feedback and conversions."""
    start, end = _instant(since, "--since"), _instant(until, "--until")
    runtime = build_runtime(load_settings())
    if journey is not None:
        known_journey(runtime.sessions, runtime.catalog.journeys, journey)
    rows = reporting.status(runtime.sessions, runtime.catalog, start, end, journey)
    if as_json:
        print_json(
            {
                "since": start.isoformat() if start else None,
                "until": end.isoformat() if end else None,
                "journeys": [r.as_dict() for r in rows],
            }
        )
        return
    span = f"{start.isoformat() if start else 'the beginning'} to {end.isoformat() if end else 'now'}"
    print_stats(rows, f"Deliveries due from {span}")
    console.print(
        "delivered counts messages the provider delivered (or that were opened); bounced, refused by "
        "the recipient's server; complained, marked as spam; converted: enrollments with a sent "
        "message followed by the journey's goal event within its window, rate = converted / "
        "enrollments sent to; coupons redeemed: codes its sent messages carried that an order named; "
        "per step, waiting counts the active enrollments whose next step it is "
        "(after a wait, the step the wait leads to)",
        highlight=False,
    )
