"""`automation loyalty ...`: the programme's schema, and customers' points and tiers."""

from __future__ import annotations

import typer

from automation.cli.app import app
from automation.core.programme import loyalty_json_schema

loyalty_app = typer.Typer(
    help="The loyalty programme (loyalty.yaml): points and tiers.", no_args_is_help=True
)
app.add_typer(loyalty_app, name="loyalty")


@loyalty_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of loyalty.yaml (for editors)."""
    typer.echo(loyalty_json_schema(), nl=False)
