"""How every report prints: tables at their natural width, JSON for machines.

A table is never squeezed to fit: Rich would cut a journey id or a date to an
ellipsis at 80 columns or when piped. Ids and instants are printed whole, and a
table wider than the terminal is printed at its own width.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from decimal import Decimal
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from automation.cli.app import console


def when(value: dt.datetime | None) -> str:
    """An instant in UTC, whole, as the reports print it."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def table(*columns: str, title: str | None = None, right: tuple[str, ...] = ()) -> Table:
    """A report table whose cells never wrap nor shrink to an ellipsis."""
    out = Table(title=title, title_justify="left", padding=(0, 1, 0, 0))
    for name in columns:
        out.add_column(name, justify="right" if name in right else "left", no_wrap=True, overflow="fold")
    return out


def print_table(report: Table) -> None:
    """Print at the table's natural width (wider than the terminal if need be, never squeezed)."""
    natural = Console(width=100_000).measure(report).maximum
    width = max(natural, console.width if console.is_terminal else 0)
    Console(file=sys.stdout, width=width, soft_wrap=True, force_terminal=console.is_terminal).print(report)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def print_json(payload: Any) -> None:
    """JSON for machines: instants in ISO 8601, money as exact decimal strings."""
    typer.echo(json.dumps(payload, indent=2, default=_plain, ensure_ascii=False))
