"""`automation keys ...`: write keys for the tracking API (created, listed, revoked)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from automation.cli.app import app, console, parse_now
from automation.cli.status_cmd import print_table
from automation.config import load_settings
from automation.processes.runtime import open_database
from automation.store import keys

keys_app = typer.Typer(help="Write keys for the tracking API (/v1/...).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

Name = Annotated[
    str, typer.Argument(metavar="NAME", help="A name for the key, such as the source that sends with it.")
]


@keys_app.command("create")
def create(name: Name) -> None:
    """Make a key and print it, once: only its hash is kept."""
    _, sessions = open_database(load_settings())
    with sessions.begin() as s:
        key = keys.create(s, name, parse_now(None))
    console.print(key, highlight=False, markup=False)


@keys_app.command("list")
def list_() -> None:
    """Every key's name, when it was made and whether it is revoked (never the key)."""
    _, sessions = open_database(load_settings())
    with sessions() as s:
        rows = keys.listing(s)
    table = Table(title="Write keys", title_justify="left")
    for col in ("name", "created_at", "revoked_at"):
        table.add_column(col)
    for k in rows:
        revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "-"
        table.add_row(k.name, k.created_at.isoformat(timespec="seconds"), revoked)
    if rows:
        print_table(table)
    else:
        console.print("no write keys; make one with `automation keys create NAME`")


@keys_app.command("revoke")
def revoke(name: Name) -> None:
    """Refuse the key from now on (requests with it get 401)."""
    _, sessions = open_database(load_settings())
    with sessions.begin() as s:
        keys.revoke(s, name, parse_now(None))
    console.print(f"revoked {name}", highlight=False, markup=False)
