"""`automation campaign send|cancel`: manual campaigns from the command line."""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from automation.campaigns import campaign as campaigns
from automation.campaigns import listing
from automation.cli.app import app, console, err_console, parse_now
from automation.cli.options import AsJson, instant
from automation.cli.output import clean, print_json, print_table, table, when
from automation.config import Settings, load_settings
from automation.core.statuses import PENDING, DeliveryStatus
from automation.core.traits import filter_traits
from automation.errors import UserError
from automation.insight.would import Caps
from automation.processes.runtime import Runtime, build_runtime, drain, open_database, run_tick

log = logging.getLogger("automation.campaigns")

campaign_app = typer.Typer(help="Manual campaigns: send a journey to an audience now, list them, or cancel.")
app.add_typer(campaign_app, name="campaign", no_args_is_help=True)


class RateColumn(ProgressColumn):
    """Customers per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "-/s", style="progress.data.speed")


@contextmanager
def enrollment_progress(total: int) -> Iterator[Callable[[int], None]]:
    """A rich bar (rate, ETA) on a terminal; a log line every few seconds otherwise."""
    if console.is_terminal:
        bar = Progress(
            TextColumn("enrolling"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        with bar:
            task = bar.add_task("enrolling", total=total)
            yield lambda n: bar.advance(task, n)
        return
    started = last = time.monotonic()
    done = 0

    def advance(n: int) -> None:
        nonlocal done, last
        done += n
        now = time.monotonic()
        if now - last >= 2 or done >= total:
            last = now
            rate = done / max(now - started, 1e-6)
            eta = (total - done) / rate if rate and total > done else 0
            log.info("enrolled %d/%d (%.0f%%), %.0f/s, ETA %.0fs", done, total, 100 * done / total, rate, eta)

    yield advance


def _deliver_embedded(settings: Settings, runtime: Runtime, now: dt.datetime) -> None:
    """Without REDIS_URL nothing else is running: tick at launch and deliver in-process."""
    from automation.processes.worker import broker, build_deliverer, install

    report = run_tick(runtime, broker, now)
    console.print(report.summary())
    if report.enqueued:
        install(build_deliverer(settings))
        drain(broker)
        console.print("delivered in-process (no REDIS_URL set)")


def _confirm(count: int, journey: str, campaign_id: str) -> None:
    if not sys.stdin.isatty():
        raise UserError(
            f"refusing to enroll {count} customers without --yes: stdin is not a terminal to confirm on"
        )
    if not typer.confirm(f"Enroll {count} customers into {journey} as campaign {campaign_id}?"):
        err_console.print("not launched; nothing sent", highlight=False)
        raise typer.Exit(1)


@campaign_app.command("send")
def send(
    journey: Annotated[
        str, typer.Argument(metavar="JOURNEY", help="The journey to enroll the audience into.")
    ],
    where: Annotated[
        str | None,
        typer.Option(
            metavar="FILTER",
            help="Audience filter as YAML text or a YAML file (ANDed with the journey's audience).",
        ),
    ] = None,
    customers: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="A file of customer ids, one per line (also filtered)."),
    ] = None,
    campaign_id: Annotated[
        str | None,
        typer.Option(metavar="ID", help="Idempotency key: relaunching it never enrolls anyone twice."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the audience and a sample message; send nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    rate: Annotated[
        str | None,
        typer.Option(
            metavar="RATE", help="Spread first messages at this pace, e.g. 50/s (default: all at once)."
        ),
    ] = None,
    now: Annotated[str | None, instant("Launch at this instant (default: now).")] = None,
) -> None:
    """Enroll an audience into JOURNEY now; its messages are due at launch."""
    at = parse_now(now)
    settings = load_settings()
    filt = campaigns.parse_where(where) if where else None
    rate_per_s = campaigns.parse_rate(rate) if rate else None
    if customers is not None and not customers.is_file():
        raise UserError(f"--customers {customers}: no such file")
    runtime = build_runtime(settings)
    for trait, _ in filter_traits(filt, ("--where",)) if filt is not None else ():
        problem = runtime.catalog.traits.problem(trait)
        if problem:
            raise UserError(f"--where: {problem}")
    cid = campaign_id or campaigns.new_campaign_id(journey, at)
    if dry_run:
        _print_preview(
            campaigns.preview(
                runtime.sessions,
                runtime.catalog,
                journey,
                now=at,
                brand=settings.email_from_name,
                where=filt,
                customer_ids=customers,
                campaign_id=cid,
                judged=(settings.default_timezone, Caps.from_settings(settings)),
            )
        )
        return
    count = campaigns.count_audience(
        runtime.sessions, campaigns.get_journey(runtime.catalog, journey), filt, customers, at
    )
    console.print(f"audience: {count} customers for journey {journey}, campaign {cid}")
    if count == 0:
        console.print("nothing to send")
        return
    if not yes:
        _confirm(count, journey, cid)
    with enrollment_progress(count) as advance:
        result = campaigns.launch(
            runtime.sessions,
            runtime.catalog,
            journey,
            now=at,
            launched_by=getpass.getuser(),
            where=filt,
            customer_ids=customers,
            campaign_id=cid,
            rate_per_s=rate_per_s,
            progress=advance,
        )
    if result.stopped:
        console.print(f"campaign {cid} was cancelled while launching; stopped")
        return
    again = " (relaunch: already enrolled customers were left alone)" if result.resumed else ""
    console.print(f"campaign {cid}: enrolled {result.enrolled} new, {result.audience_size} in total{again}")
    if rate_per_s:
        last = at + dt.timedelta(seconds=max(result.matched - 1, 0) / rate_per_s)
        console.print(f"first messages spread at {rate_per_s:g}/s, the last due at {last.isoformat()}")
    if settings.embedded_broker:
        _deliver_embedded(settings, runtime, at)
    else:
        console.print("the scheduler's next tick turns them into messages (or run `automation tick` now)")


def _counts(counter: Counter[str]) -> str:
    return "; ".join(f"{reason} {n}" for reason, n in counter.most_common())


def _print_preview(p: campaigns.Preview) -> None:
    console.print(f"dry run: {p.audience_size} customers would enter {p.journey_id}; nothing sent")
    if p.reach is not None:
        reach = p.reach
        console.print(
            f"at launch: {reach.receive} would receive the first message, {reach.later.total()} would "
            f"get it later, {reach.not_sent.total()} would not get it",
            highlight=False,
        )
        if reach.later:
            console.print(f"  later: {_counts(reach.later)}", highlight=False, markup=False)
        if reach.not_sent:
            console.print(f"  not sent: {_counts(reach.not_sent)}", highlight=False, markup=False)
    if p.sample:
        console.print("sample recipients:")
        for r in p.sample:
            console.print(clean(f"  {r.customer_id}  {r.email}  {r.timezone or '-'}"))
    if p.message:
        console.print("sample message (first recipient):")
        console.print(clean(p.message))


@campaign_app.command("list")
def list_(as_json: AsJson = False) -> None:
    """Every campaign: who launched it and when, its audience, and what became of its messages."""
    _, sessions = open_database(load_settings())
    rows = listing.campaigns(sessions)
    if as_json:
        print_json({"campaigns": [r.as_dict() for r in rows]})
        return
    numbers = ("audience", "sent", "pending", "skipped", "failed", "delivered", "opened", "clicked")
    out = table("campaign", "journey", "launched by", "launched at (UTC)", "status", *numbers, right=numbers)
    for r in rows:
        d = r.deliveries
        out.add_row(
            r.id,
            r.journey_id,
            r.launched_by,
            when(r.launched_at),
            r.status,
            str(r.audience_size),
            str(d[DeliveryStatus.SENT]),
            str(sum(d[s] for s in (*PENDING, DeliveryStatus.SENDING))),
            str(d[DeliveryStatus.SKIPPED] + d[DeliveryStatus.SUPPRESSED]),
            str(d[DeliveryStatus.FAILED] + d[DeliveryStatus.UNKNOWN]),
            str(r.feedback["delivered"]),
            str(r.opened),
            str(r.clicked),
        )
    print_table(out)
    console.print(
        f"{len(rows)} campaigns; pending: queued, deferred or sending; skipped includes suppressed; "
        "failed includes unknown",
        highlight=False,
    )


@campaign_app.command("cancel")
def cancel(
    campaign_id: Annotated[str, typer.Argument(metavar="ID", help="The campaign id printed at launch.")],
    now: Annotated[str | None, instant("Cancel as of this instant (default: now).")] = None,
) -> None:
    """Stop what a campaign has not sent yet (enrollments and queued or deferred messages)."""
    at = parse_now(now)
    settings = load_settings()
    runtime = build_runtime(settings)
    result = campaigns.cancel(runtime.sessions, campaign_id, at)
    console.print(
        f"campaign {campaign_id} cancelled: {result.enrollments} enrollments stopped, "
        f"{result.deliveries} pending messages skipped"
    )
