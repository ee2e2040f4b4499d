"""`automation traits`: the custom traits customers carry that `traits.yaml` does not declare."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from automation.cli.app import app, console
from automation.cli.options import AsJson
from automation.config import load_settings
from automation.core.traits import traits_json_schema
from automation.processes.runtime import build_runtime
from automation.store import trait_names

traits_app = typer.Typer(help="Custom traits (declared in traits.yaml).", no_args_is_help=True)
app.add_typer(traits_app, name="traits")


@traits_app.command("unknown")
def unknown(
    as_json: AsJson = False,
) -> None:
    """List the custom traits ingested for customers that traits.yaml does not declare."""
    runtime = build_runtime(load_settings())
    with runtime.sessions() as s:
        found = trait_names.counts(s)
    declared = runtime.catalog.traits.declared
    rows = sorted((name, n) for name, n in found.items() if name not in declared)
    if as_json:
        console.print_json(json.dumps([{"trait": name, "customers": n} for name, n in rows]))
        return
    if not rows:
        console.print("every custom trait customers carry is declared in traits.yaml")
        return
    table = Table(title="Undeclared custom traits", title_justify="left", padding=(0, 1, 0, 0))
    table.add_column("trait", overflow="fold")
    table.add_column("customers", justify="right")
    for name, n in rows:
        table.add_row(name, str(n))
    console.print(table)
    console.print(
        f"declare them in {runtime.catalogs.journeys_dir / 'traits.yaml'} to use them in templates",
        highlight=False,
    )


@traits_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of traits.yaml (for editors)."""
    typer.echo(traits_json_schema(), nl=False)
