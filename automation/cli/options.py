"""Options that many commands share, declared once so each reads and documents the same."""

from __future__ import annotations

from typing import Annotated, Any

import typer


def instant(help_text: str) -> Any:
    """An ISO 8601 instant option (`--now`, `--since`, `--until`); `help_text` says what it bounds."""
    return typer.Option(metavar="ISO8601", help=help_text)


AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
CustomerOption = Annotated[str, typer.Option("--customer", metavar="ID", help="Customer id.")]
