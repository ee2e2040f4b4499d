"""`automation journeys ...`: validate, publish the schema, explain and preview."""

from __future__ import annotations

import getpass
import re
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker

from automation.cli.app import app, console, err_console, parse_now
from automation.cli.lookup import JourneyArgument, require_journey
from automation.cli.options import AsJson, CustomerOption, instant
from automation.cli.output import clean, print_json
from automation.config import Settings, load_settings
from automation.core.journeys import Journey, journey_json_schema
from automation.definitions.catalog import Catalog, check_catalog, load_catalog
from automation.definitions.rendering import RenderedEmail
from automation.deliver.testsend import send_test
from automation.errors import UserError
from automation.insight.explain import explain, preview
from automation.insight.would import Caps
from automation.processes.runtime import open_database

journeys_app = typer.Typer(help="Check and inspect journeys.", no_args_is_help=True)
app.add_typer(journeys_app, name="journeys")


PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?P<message>.*)$", re.DOTALL)


def _problem(text: str) -> dict[str, object]:
    """A `FILE:LINE:COL: message` line as fields (a problem without a position keeps only its text)."""
    found = PROBLEM.match(text)
    if found is None:
        return {"file": None, "line": None, "column": None, "message": text}
    return {**found.groupdict(), "line": int(found["line"]), "column": int(found["column"])}


@journeys_app.command("validate")
def validate(
    directory: Annotated[
        Path | None,
        typer.Argument(metavar="DIR", help="Journeys folder (default: AUTOMATION_JOURNEYS_DIR)."),
    ] = None,
    templates: Annotated[
        Path | None, typer.Option(metavar="DIR", help="Templates folder (default: AUTOMATION_TEMPLATES_DIR).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Load every journey and template; print each problem as FILE:LINE:COL: message."""
    settings = load_settings()
    catalog, problems = check_catalog(directory or settings.journeys_dir, templates or settings.templates_dir)
    if as_json:
        print_json(
            {
                "valid": catalog is not None,
                "journeys": sorted(catalog.journeys) if catalog is not None else [],
                "problems": [_problem(p) for p in problems],
            }
        )
        if catalog is None:
            raise typer.Exit(1)
        return
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


def _open(journey_id: str) -> tuple[Settings, Catalog, Journey, sessionmaker[Session]]:
    """Settings, the validated catalog, the named journey and the database, for one command."""
    settings = load_settings()
    catalog = load_catalog(
        settings.journeys_dir,
        settings.templates_dir,
        locale=settings.default_locale,
        timezone=settings.default_timezone,
    )
    journey = require_journey(catalog, journey_id)
    _, sessions = open_database(settings)
    return settings, catalog, journey, sessions


@journeys_app.command("explain")
def explain_cmd(
    journey_id: JourneyArgument,
    customer: CustomerOption,
    now: Annotated[str | None, instant("Judge at this instant (default: now).")] = None,
) -> None:
    """Say whether CUSTOMER would enter JOURNEY at NOW and, if not, which condition keeps them out."""
    at = parse_now(now)
    settings, catalog, journey, sessions = _open(journey_id)
    with sessions() as session:
        result = explain(
            session,
            journey,
            catalog,
            customer,
            at,
            settings.default_timezone,
            Caps.from_settings(settings),
            settings.global_holdout_pct,
        )
    verdict = "enters" if result.enters else "does not enter"
    console.print(clean(f"{customer} {verdict} {journey.id} at {at.isoformat()}"))
    for line in result.lines:
        console.print(clean(f"  - {line}"))


@journeys_app.command("preview")
def preview_cmd(
    journey_id: JourneyArgument,
    customer: CustomerOption,
    step: Annotated[
        str | None,
        typer.Option(
            "--step", metavar="STEP", help="Step id or position (3, 2.then.1); default: every send."
        ),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", metavar="FILE", help="Write the email's HTML part to FILE.")
    ] = None,
    now: Annotated[str | None, instant("Preview as of this instant (default: now).")] = None,
) -> None:
    """Render exactly what CUSTOMER would receive from JOURNEY, without sending anything."""
    at = parse_now(now)
    settings, catalog, journey, sessions = _open(journey_id)
    with sessions() as session:
        steps = preview(session, journey, catalog, customer, at, settings, step=step)
    html_written = False
    for item in steps:
        out = [f"== step {item.number} ({item.step_id}): {item.step.channel}, template {item.template}"]
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
        console.print(clean("\n".join(out)))
    if html is not None and not html_written:
        raise UserError("--html needs an email step; the previewed steps are SMS only")


@journeys_app.command("test")
def test_cmd(
    journey_id: JourneyArgument,
    customer: Annotated[
        str, typer.Option("--customer", metavar="ID", help="Render with this customer's data.")
    ],
    to: Annotated[str, typer.Option("--to", metavar="ADDRESS", help="Send to this email address or phone.")],
    step: Annotated[
        str | None, typer.Option("--step", metavar="STEP_ID", help="The send step's id (default: the first).")
    ] = None,
    now: Annotated[str | None, instant("Render as of this instant (default: now).")] = None,
) -> None:
    """Send one real message of JOURNEY, rendered for CUSTOMER, to ADDRESS, marked [TEST].

    It goes through the configured provider and is recorded apart from the
    ledger: no report, cap or conversion counts it.
    """
    at = parse_now(now)
    settings, catalog, journey, sessions = _open(journey_id)
    from automation import providers

    email = providers.email_provider(settings)
    sms = providers.sms_provider(settings)
    sent = send_test(
        sessions,
        catalog,
        settings,
        journey,
        customer,
        to,
        at,
        step_id=step,
        sent_by=getpass.getuser(),
        email=email,
        sms=sms,
    )
    item = sent.step
    console.print(
        f"test {item.step.channel} of {journey.id} step {item.step_id}, rendered for {customer}, sent to "
        f"--to through {sent.provider} (provider id {sent.provider_message_id}; test send {sent.id})",
        highlight=False,
        markup=False,
    )
    for note in item.notes:
        console.print(clean(f"note: for the real customer, {note}"))
