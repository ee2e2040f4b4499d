"""`automation insight`: refresh RFM scores and predictions, and check the predictions against history."""

from __future__ import annotations

from typing import Annotated

import typer

from automation.cli.app import app, console, parse_at, parse_now
from automation.cli.options import AsJson, instant
from automation.cli.output import print_json, print_table, table
from automation.config import load_settings
from automation.core.clv import FitError
from automation.errors import UserError
from automation.insight.refresh import refresh as run_refresh
from automation.insight.reporting import fold_ledgers
from automation.insight.validation import validate as run_validate
from automation.processes.runtime import build_runtime

insight_app = typer.Typer(
    help="RFM segments and predicted customer value: refresh and validate.", no_args_is_help=True
)
app.add_typer(insight_app, name="insight")


@insight_app.command()
def refresh(
    now: Annotated[str | None, instant("Predict as of this instant (default: now).")] = None,
) -> None:
    """Recompute every customer's RFM scores and segment, p_alive, expected orders and predicted value.

    The conversion ledger is folded first, as the daily run in the scheduler does.
    """
    at = parse_now(now)
    settings = load_settings()
    runtime = build_runtime(settings)
    fold_ledgers(runtime.sessions, runtime.catalogs.current)
    done = run_refresh(runtime.sessions, settings.order_event, at)
    console.print(done.summary())


@insight_app.command()
def validate(
    split: Annotated[str, typer.Option(metavar="ISO8601", help="Fit on the orders before this instant.")],
    until: Annotated[str | None, instant("Count the actual orders up to here (default: now).")] = None,
    as_json: AsJson = False,
) -> None:
    """Fit on the orders before --split; predicted against actual orders after it, by decile of prediction."""
    start = parse_at(split, "--split")
    end = parse_now(None) if until is None else parse_at(until, "--until")
    if start >= end:
        raise typer.BadParameter("--split must be before --until", param_hint="--split")
    settings = load_settings()
    with build_runtime(settings).sessions() as s:
        try:
            found = run_validate(s, settings.order_event, start, end)
        except FitError as exc:
            raise UserError(f"cannot validate: {exc}") from None
    m = found.model
    if as_json:
        rows = [{"decile": d, "customers": n, "predicted": p, "actual": a} for d, n, p, a in found.rows]
        print_json(
            {"split": start, "until": end, "r": m.r, "alpha": m.alpha, "a": m.a, "b": m.b, "deciles": rows}
        )
        return
    title = f"BG/NBD fitted before {start.isoformat()}: orders in the {found.days:g} days after, by decile"
    out = table(
        "decile", "customers", "predicted", "actual", title=title, right=("customers", "predicted", "actual")
    )
    for d, n, p, a in found.rows:
        out.add_row(str(d), f"{n:,}", f"{p:,.1f}", f"{a:,.0f}")
    print_table(out)
    console.print(f"r={m.r:.3f} alpha={m.alpha:.3f} a={m.a:.3f} b={m.b:.3f} (alpha in days)")
