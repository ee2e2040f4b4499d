"""The Typer application and the shared console objects."""

from __future__ import annotations

import datetime as dt

import typer
from rich.console import Console

from automation.core.records import RecordError, parse_instant

app = typer.Typer(
    name="automation",
    help="Lifecycle campaigns as code: journeys in YAML, sent by email and SMS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def parse_at(value: str, flag: str) -> dt.datetime:
    """An instant option (`--since`, `--now`...) as an aware UTC instant."""
    try:
        return parse_instant(value, flag)
    except RecordError as exc:
        raise typer.BadParameter(str(exc)) from None


def parse_now(value: str | None) -> dt.datetime:
    """`--now` as an aware UTC instant; the wall clock when absent."""
    return dt.datetime.now(dt.UTC) if value is None else parse_at(value, "--now")
