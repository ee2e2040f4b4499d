"""`automation kpis`: the loyalty programme's KPIs over a period, and a cohort retention matrix."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from automation.cli.app import app, console, parse_at, parse_now
from automation.cli.options import AsJson, instant
from automation.cli.output import print_json, print_table, table
from automation.config import load_settings
from automation.core import kpis as maths
from automation.core.durations import parse_duration
from automation.insight import kpis as counting
from automation.processes.runtime import build_runtime

kpis_app = typer.Typer(help="Loyalty KPIs over a period (and `cohorts`).", invoke_without_command=True)
app.add_typer(kpis_app, name="kpis")


def _window(value: str) -> dt.timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--active-window") from None


@kpis_app.callback()
def kpis(
    ctx: typer.Context,
    since: Annotated[str | None, instant("Start of the period (default: a year before --until).")] = None,
    until: Annotated[str | None, instant("End of the period (default: now).")] = None,
    active_window: Annotated[
        str, typer.Option(metavar="DURATION", help="A customer is active with an order this recent.")
    ] = counting.DEFAULT_WINDOW,
    as_json: AsJson = False,
) -> None:
    """Loyalty KPIs over a period: retention, churn, repeat purchase rate, CLV, journeys' revenue."""
    if ctx.invoked_subcommand is not None:
        return
    end = parse_now(None) if until is None else parse_at(until, "--until")
    start = parse_at(since, "--since") if since is not None else end - counting.DEFAULT_PERIOD
    if start >= end:
        raise typer.BadParameter("--since must be before --until", param_hint="--since")
    window = _window(active_window)
    settings = load_settings()
    runtime = build_runtime(settings)
    with runtime.sessions() as s:
        figures = maths.kpis(counting.counts(s, settings.order_event, start, end, window))
        lift = counting.lift(s, settings.order_event, start, end, settings.global_holdout_pct)
    figures["control_group"] = lift.as_dict() if lift else None
    if as_json:
        print_json({"since": start, "until": end, "active_window": active_window, **figures})
        return
    out = table("kpi", "value", title=f"KPIs from {start.isoformat()} to {end.isoformat()}", right=("value",))
    for name, value in figures.items():
        if name != "control_group":
            out.add_row(name, maths.shown(name, value))
    print_table(out)
    if lift is None:
        console.print("no global control group (AUTOMATION_GLOBAL_HOLDOUT_PCT is 0)")
        return
    shown = lift.as_dict()
    programme, control = shown["programme_revenue_per_customer"], shown["control_revenue_per_customer"]
    revenue_lift = shown["revenue_lift"]
    console.print(
        f"against the global control group ({lift.control_customers:,} customers): revenue per customer "
        f"{maths.shown('', programme)} vs {maths.shown('', control)}"
        f", lift {'-' if revenue_lift is None else f'{revenue_lift:+.1%}'}"
    )


@kpis_app.command("cohorts")
def cohorts(
    by: Annotated[str, typer.Option(metavar="SPAN", help="The cohort's span: month.")] = "month",
    until: Annotated[str | None, instant("Orders before (default: now).")] = None,
    as_json: AsJson = False,
) -> None:
    """A retention matrix: per first-order month, the share of its customers ordering N months later."""
    if by != "month":
        raise typer.BadParameter(f"{by!r}: cohorts are by month", param_hint="--by")
    end = parse_now(None) if until is None else parse_at(until, "--until")
    settings = load_settings()
    with build_runtime(settings).sessions() as s:
        active, sizes = counting.cohorts(s, settings.order_event, end)
    matrix = maths.retention_matrix(active, sizes)
    if as_json:
        print_json(
            {
                "by": by,
                "cohorts": [{"cohort": c, "customers": sizes[c], "retention": r} for c, r in matrix.items()],
            }
        )
        return
    width = max((len(r) for r in matrix.values()), default=1)
    months = tuple(f"m{i}" for i in range(width))
    out = table(
        "cohort", "customers", *months, title="Retention by first-order month", right=("customers", *months)
    )
    for cohort, row in matrix.items():
        out.add_row(cohort, f"{sizes[cohort]:,}", *(f"{v:.0%}" for v in row), *([""] * (width - len(row))))
    print_table(out)
