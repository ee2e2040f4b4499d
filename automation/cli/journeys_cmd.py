"""`automation journeys ...`: validate, publish the schema, explain and preview."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker

from automation.cli.app import app, console, err_console, parse_now
from automation.config import Settings, load_settings
from automation.core.journeys import Journey, journey_json_schema
from automation.definitions.catalog import Catalog, check_catalog, load_catalog
from automation.definitions.rendering import RenderedEmail
from automation.errors import UserError
from automation.insight.explain import explain, preview
from automation.processes.runtime import open_database

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


def _journey(catalog: Catalog, journey_id: str) -> Journey:
    journey = catalog.get(journey_id)
    if journey is None:
        raise UserError(f"no journey {journey_id!r} (journeys: {', '.join(sorted(catalog.journeys))})")
    return journey


def _open(journey_id: str) -> tuple[Settings, Catalog, Journey, sessionmaker[Session]]:
    """Settings, the validated catalog, the named journey and the database, for one command."""
    settings = load_settings()
    catalog = load_catalog(settings.journeys_dir, settings.templates_dir)
    journey = _journey(catalog, journey_id)
    _, sessions = open_database(settings)
    return settings, catalog, journey, sessions


@journeys_app.command("explain")
def explain_cmd(
    journey_id: Annotated[str, typer.Argument(metavar="JOURNEY", help="Journey id.")],
    customer: Annotated[str, typer.Option("--customer", help="Customer id.")],
    now: Annotated[str | None, typer.Option(help="Judge at this ISO 8601 instant (default: now).")] = None,
) -> None:
    """Say whether CUSTOMER would enter JOURNEY at NOW and, if not, which condition keeps them out."""
    at = parse_now(now)
    settings, catalog, journey, sessions = _open(journey_id)
    with sessions() as session:
        result = explain(session, journey, catalog, customer, at, settings.default_timezone)
    verdict = "enters" if result.enters else "does not enter"
    console.print(f"{customer} {verdict} {journey.id} at {at.isoformat()}", highlight=False, markup=False)
    for line in result.lines:
        console.print(f"  - {line}", highlight=False, markup=False)


@journeys_app.command("preview")
def preview_cmd(
    journey_id: Annotated[str, typer.Argument(metavar="JOURNEY", help="Journey id.")],
    customer: Annotated[str, typer.Option("--customer", help="Customer id.")],
    step: Annotated[
        int | None, typer.Option("--step", help="Step number (1-based); default every send.")
    ] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write the email's HTML part to FILE.")] = None,
    now: Annotated[
        str | None, typer.Option(help="Preview as of this ISO 8601 instant (default: now).")
    ] = None,
) -> None:
    """Render exactly what CUSTOMER would receive from JOURNEY, without sending anything."""
    at = parse_now(now)
    settings, catalog, journey, sessions = _open(journey_id)
    with sessions() as session:
        steps = preview(
            session,
            journey,
            catalog,
            customer,
            at,
            default_tz=settings.default_timezone,
            brand=settings.email_from_name,
            public_url=settings.public_url,
            step_number=step,
            shop=settings.shop(),
        )
    html_written = False
    for item in steps:
        out = [f"== step {item.number} ({item.step_id}): {item.step.channel}, template {item.step.template}"]
        out += [f"note: {note}" for note in item.notes]
        if isinstance(item.message, RenderedEmail):
            out += [f"Subject: {item.message.subject}", "", item.message.text, ""]
            if html is not None and not html_written:
                try:
                    html.write_text(item.message.html + "\n", encoding="utf-8")
                except OSError as exc:
                    raise UserError(f"cannot write {html}: {exc.strerror}") from None
                out.append(f"(HTML part written to {html})")
                html_written = True
        else:
            out += [item.message.body, f"({item.message.encoding}, {item.message.segments} segment(s))", ""]
        console.print("\n".join(out), highlight=False, markup=False)
    if html is not None and not html_written:
        raise UserError("--html needs an email step; the previewed steps are SMS only")
