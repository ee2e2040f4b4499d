"""`automation journeys ...`: validate and publish the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from automation.catalog import check_catalog
from automation.cli.app import app, console, err_console
from automation.config import load_settings
from automation.journeys import journey_json_schema

journeys_app = typer.Typer(help="Check and inspect journeys.", no_args_is_help=True)
app.add_typer(journeys_app, name="journeys")


@journeys_app.command("validate")
def validate(
    directory: Annotated[Path | None, typer.Argument(help="Journeys folder.")] = None,
    templates: Annotated[Path | None, typer.Option(help="Templates folder.")] = None,
) -> None:
    """Load every journey and template; print each problem as FILE:LINE:COL: message."""
    settings = load_settings()
    catalog, problems = check_catalog(directory or settings.journeys_dir, templates or settings.templates_dir)
    for problem in problems:
        err_console.print(problem, highlight=False, markup=False)
    if catalog is None:
        err_console.print(f"{len(problems)} problem(s)", highlight=False)
        raise typer.Exit(1)
    console.print(f"{len(catalog.journeys)} journeys valid: {', '.join(sorted(catalog.journeys))}")


@journeys_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of a journey file (for editor completion)."""
    typer.echo(journey_json_schema(), nl=False)
