"""How every report prints: tables at their natural width, JSON for machines.

A table is never squeezed to fit: Rich would cut a journey id or a date to an
ellipsis at 80 columns or when piped. Ids and instants are printed whole, and a
table wider than the terminal is printed at its own width.
"""

from __future__ import annotations

import datetime as dt
import json
import re
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


#: Never sent to a terminal from data: C0/C1 controls but tab and newline (ESC starts a
#: terminal command, CR overwrites the line) and the bidi controls that reorder what is shown.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """Data fit for the operator's terminal: the characters above removed."""
    return UNSAFE.sub("", text)


#: Lines of one repeated warning an ingest summary names before it counts the rest.
WARNING_LINES_SHOWN = 10


def warning_summary(warnings: list[str], source: str) -> list[str]:
    """`FILE:LINE: warning: TEXT` lines, each TEXT shown at its first few lines and then counted.

    Importing a file of a million customers whose `tier` the programme owns must not print a
    million identical lines: the first ten name where, one more line says how many others.
    """
    shown: list[str] = []
    seen: dict[str, int] = {}
    for line in warnings:
        text = line.split(": warning: ", 1)[-1]
        seen[text] = seen.get(text, 0) + 1
        if seen[text] <= WARNING_LINES_SHOWN:
            shown.append(line)
    shown += [
        f"{source}: warning: {count - WARNING_LINES_SHOWN:,} more lines: {text}"
        for text, count in seen.items()
        if count > WARNING_LINES_SHOWN
    ]
    return shown


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return clean(str(value))


class DataTable(Table):
    """A table whose text cells are cleaned, whatever the caller passes."""

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        super().add_row(*(clean(r) if isinstance(r, str) else r for r in renderables), **kwargs)


def table(*columns: str, title: str | None = None, right: tuple[str, ...] = ()) -> Table:
    """A report table whose cells never wrap nor shrink to an ellipsis."""
    out = DataTable(title=clean(title) if title else None, title_justify="left", padding=(0, 1, 0, 0))
    for name in columns:
        out.add_column(name, justify="right" if name in right else "left", no_wrap=True, overflow="fold")
    return out


def print_table(report: Table) -> None:
    """Print at the table's natural width (wider than the terminal if need be, never squeezed)."""
    natural = Console(width=100_000, markup=False).measure(report).maximum
    width = max(natural, console.width if console.is_terminal else 0)
    wide = Console(
        file=sys.stdout,
        width=width,
        soft_wrap=True,
        force_terminal=console.is_terminal,
        markup=False,
        emoji=False,
        highlight=False,
    )
    wide.print(report)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def print_json(payload: Any) -> None:
    """JSON for machines: instants in ISO 8601, money as exact decimal strings."""
    typer.echo(json.dumps(payload, indent=2, default=_plain, ensure_ascii=False))
