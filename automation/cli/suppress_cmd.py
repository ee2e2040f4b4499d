"""`automation suppress ...`: the addresses never to message, by hand or from a file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from automation.cli.app import app, console, err_console, parse_now
from automation.cli.options import AsJson
from automation.cli.output import print_json, print_table, table, when
from automation.config import load_settings
from automation.core import addresses, statuses
from automation.errors import UserError
from automation.processes.runtime import open_database
from automation.store import suppressions

suppress_app = typer.Typer(help="The suppression list (addresses never to message).", no_args_is_help=True)
app.add_typer(suppress_app, name="suppress")

Channel = Annotated[str, typer.Argument(metavar="CHANNEL", help="email or sms.")]


def _address(channel: str, address: str) -> str:
    try:
        return addresses.normalize(channel, address)
    except addresses.AddressError as exc:
        raise UserError(str(exc)) from None


@suppress_app.command("add")
def add(
    channel: Channel,
    address: Annotated[
        str, typer.Argument(metavar="ADDRESS", help="An email address or an E.164 phone number.")
    ],
    reason: Annotated[str, typer.Option(metavar="TEXT", help="Why (kept with the entry).")] = "manual",
) -> None:
    """Never message ADDRESS on CHANNEL again."""
    key = _address(channel, address)
    _, sessions = open_database(load_settings())
    with sessions.begin() as s:
        added = suppressions.add(s, [suppressions.Entry(channel, key, reason)], "manual", parse_now(None))
    console.print(f"suppressed {channel} {key}" if added else f"{channel} {key} was already suppressed")


@suppress_app.command("remove")
def remove(
    channel: Channel,
    address: Annotated[str, typer.Argument(metavar="ADDRESS", help="The suppressed address.")],
) -> None:
    """Allow ADDRESS on CHANNEL again (consent still applies)."""
    key = _address(channel, address)
    _, sessions = open_database(load_settings())
    with sessions.begin() as s:
        removed = suppressions.remove(s, channel, key)
    if not removed:
        raise UserError(f"{channel} {key} is not suppressed")
    console.print(f"removed {channel} {key}")


@suppress_app.command("list")
def list_(
    channel: Annotated[
        str | None, typer.Argument(metavar="CHANNEL", help="Only this channel (email or sms).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Every suppressed address, newest first."""
    if channel is not None and channel not in tuple(statuses.Channel):
        raise UserError(f"unknown channel {channel!r} (email or sms)")
    _, sessions = open_database(load_settings())
    with sessions() as s:
        rows = suppressions.listing(s, channel)
    if as_json:
        fields = ("channel", "address", "reason", "source", "created_at")
        print_json({"suppressions": [{f: getattr(row, f) for f in fields} for row in rows]})
        return
    out = table("Channel", "Address", "Reason", "Source", "Since (UTC)")
    for row in rows:
        out.add_row(row.channel, row.address, row.reason, row.source, when(row.created_at))
    print_table(out)
    console.print(f"{len(rows)} suppressed")


@suppress_app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A CSV with an address column, or one address per line.")
    ],
    reason: Annotated[str, typer.Option(metavar="TEXT", help="Reason for rows that give none.")] = "import",
) -> None:
    """Suppress every address in FILE (idempotent); bad lines are reported, the rest land.

    FILE is either a CSV whose header names an `address` column (optional
    `channel` and `reason` columns), or plain text with one address per line.
    The channel is read from the address when not given: an @ means email.
    """
    try:
        lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror}") from None
    entries, problems = suppressions.parse_import(lines, reason)
    _, sessions = open_database(load_settings())
    with sessions.begin() as s:
        added = suppressions.add(s, entries, "import", parse_now(None))
    for problem in problems:
        err_console.print(f"{file}:{problem}", highlight=False, markup=False)
    console.print(
        f"read {len(entries) + len(problems)} addresses: suppressed {added} new, "
        f"{len(entries) - added} already suppressed, rejected {len(problems)}"
    )
    if problems:
        raise typer.Exit(1)
