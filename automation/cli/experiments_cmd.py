"""`automation experiments ...`: list the journeys' experiments, show one journey's results."""

from __future__ import annotations

import typer

from automation.cli.app import app, console
from automation.cli.lookup import JourneyArgument
from automation.cli.options import AsJson
from automation.cli.output import print_json, print_table, table
from automation.config import load_settings
from automation.core import experiment_stats as es
from automation.insight import experiments
from automation.processes.runtime import build_runtime

experiments_app = typer.Typer(
    help="A/B variants, holdouts and split paths: each arm's conversions, lift and verdict.",
    no_args_is_help=True,
)
app.add_typer(experiments_app, name="experiments")

NUMBERS = ("weight", "entrants", "sent", "delivered", "opened", "clicked", "converted", "rate (95% CI)")
VERSUS = ("revenue/entrant", "lift (95% CI)", "relative (95% CI)", "p", "P(best)")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _ci(interval: es.Interval | None) -> str:
    return "" if interval is None else f" [{interval[0]:.2%}, {interval[1]:.2%}]"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def print_result(r: experiments.ExperimentResult) -> None:
    """One experiment as `automation experiments show` prints it (the demo prints the same)."""
    columns = ("arm", *NUMBERS, *VERSUS)
    where = f"split {r.step_id}, by path" if r.split else f"step {r.step_id}"
    out = table(*columns, title=f"{r.journey_id}, {where}", right=columns[1:])
    for a in r.arms:
        lift = a.lift
        out.add_row(
            a.arm + (" (baseline)" if a.arm == r.baseline else ""),
            f"{a.weight:g}%",
            str(a.entrants),
            str(a.sent),
            str(a.delivered),
            str(a.opened),
            str(a.clicked),
            str(a.converted),
            _pct(a.conversion_rate) + _ci(a.conversion_ci),
            _money(a.revenue_per_entrant),
            "-" if lift is None else f"{lift.absolute:+.2%}{_ci(lift.absolute_ci)}",
            "-" if lift is None or lift.relative is None else f"{lift.relative:+.1%}{_ci(lift.relative_ci)}",
            "-" if lift is None else _p(lift.p_value),
            _pct(a.p_best),
        )
    print_table(out)
    lines = list(r.notes)
    if r.srm is not None:
        flag = "MISMATCH: check the assignment before trusting the result" if r.srm.flagged else "ok"
        lines.append(f"sample ratio: chi-squared {r.srm.chi2:.2f}, p = {r.srm.p_value:.4f} ({flag})")
    if r.global_control:
        lines.append(f"{r.global_control} entrants of the global control group are in no arm")
    lines.append(f"verdict: {r.verdict}")
    for line in lines:
        console.print(line, highlight=False)


@experiments_app.command("show")
def show(
    journey_id: JourneyArgument,
    as_json: AsJson = False,
) -> None:
    """Each arm of JOURNEY's experiments: entrants, sends, conversions, lift against the baseline, verdict."""
    settings = load_settings()
    runtime = build_runtime(settings)
    results = experiments.show(runtime.sessions, runtime.catalog, journey_id, settings.global_holdout_pct)
    if as_json:
        print_json({"journey": journey_id, "experiments": [r.as_dict() for r in results]})
        return
    for r in results:
        print_result(r)


@experiments_app.command("list")
def list_cmd(
    as_json: AsJson = False,
) -> None:
    """Every journey's experiments: the send step that carries the arms, and the arms' weights."""
    runtime = build_runtime(load_settings())
    found = experiments.listing(runtime.catalog)
    if as_json:
        print_json(
            [{"journey": j.id, "step": d.step_id, "split": d.split, "arms": dict(d.arms)} for j, d in found]
        )
        return
    out = table("journey", "step", "arms (share of entrants)", title="Experiments")
    for j, d in found:
        out.add_row(j.id, d.step_id, ", ".join(f"{arm} {w:g}%" for arm, w in d.arms))
    print_table(out)
