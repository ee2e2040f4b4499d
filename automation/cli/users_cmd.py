"""`automation users add|list|remove|passwd`: who may sign in to the dashboard."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated

import typer
from rich.table import Table

from automation.cli.app import app, console
from automation.config import load_settings
from automation.errors import UserError
from automation.processes.runtime import open_database
from automation.web.dashboard import accounts
from automation.web.dashboard.accounts import Role

users_app = typer.Typer(help="Dashboard users: who may sign in, as viewer or editor.", no_args_is_help=True)
app.add_typer(users_app, name="users")

Email = Annotated[str, typer.Argument(metavar="EMAIL", help="The user's email address (their sign-in name).")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
]


def _password(from_stdin: bool) -> str:
    """The new password: stdin's first line, or asked twice on the terminal (never echoed)."""
    if from_stdin:
        return accounts.check_password(sys.stdin.readline().rstrip("\r\n"))
    if not sys.stdin.isatty():
        raise UserError("no terminal to ask for the password on: pass --password-stdin")
    first = typer.prompt("Password", hide_input=True)
    accounts.check_password(first)
    if typer.prompt("Repeat the password", hide_input=True) != first:
        raise UserError("the passwords differ; nothing changed")
    return str(first)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@users_app.command("add")
def add(
    email: Email,
    role: Annotated[
        Role, typer.Option(metavar="ROLE", help="viewer: reads; editor: also launches campaigns, suppresses.")
    ],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a dashboard user with a password."""
    key = accounts.normal_email(email)
    password = _password(password_stdin)
    _, sessions = open_database(load_settings())
    with sessions.begin() as s:
        user = accounts.add(s, key, role, password, _now())
    console.print(f"added {user.email} as {user.role}", highlight=False)


@users_app.command("list")
def list_() -> None:
    """Every dashboard user, their role and any lockout."""
    _, sessions = open_database(load_settings())
    with sessions() as s:
        rows = accounts.listing(s)
    now = _now()
    table = Table("Email", "Role", "Since (UTC)", "Locked until (UTC)")
    for user, created, locked in rows:
        lock = f"{locked:%Y-%m-%d %H:%M}" if locked and locked > now else ""
        table.add_row(user.email, user.role, f"{created:%Y-%m-%d %H:%M}", lock)
    console.print(table)
    console.print(f"{len(rows)} users")


@users_app.command("remove")
def remove(email: Email) -> None:
    """Delete a user; their open sessions end at once."""
    _, sessions = open_database(load_settings())
    with sessions.begin() as s:
        accounts.remove(s, email)
    console.print(f"removed {accounts.normal_email(email)}", highlight=False)


@users_app.command("passwd")
def passwd(email: Email, password_stdin: PasswordStdin = False) -> None:
    """Set a new password; it lifts a lockout and signs the user out everywhere."""
    key = accounts.normal_email(email)
    password = _password(password_stdin)
    _, sessions = open_database(load_settings())
    with sessions.begin() as s:
        accounts.set_password(s, key, password)
    console.print(f"password changed for {key}; their sessions were ended", highlight=False)
