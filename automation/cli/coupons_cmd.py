"""`automation coupons ...`: fill coupon pools (import, generate) and see what is left in them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from automation.cli.app import app, console, parse_now
from automation.cli.options import AsJson
from automation.cli.output import print_json, print_table, table
from automation.config import load_settings
from automation.core import coupons as rules
from automation.errors import UserError
from automation.loyalty import coupons
from automation.processes.runtime import open_database

coupons_app = typer.Typer(
    help="Coupon pools: import or generate codes, and their status.", no_args_is_help=True
)
app.add_typer(coupons_app, name="coupons")

Pool = Annotated[str, typer.Argument(metavar="POOL", help="The pool's name (a step's `coupon:`).")]
LowWater = Annotated[
    int | None,
    typer.Option(
        "--low-water", min=0, metavar="N", help="Warn when fewer codes than this are left (default 100)."
    ),
]


def _pool(name: str) -> str:
    if not re.match(rules.POOL_NAME, name):
        raise UserError(f"pool {name!r}: a name is letters, digits, '-' and '_' (at most 64)")
    return name


@coupons_app.command("import")
def import_(
    pool: Pool,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="One code a line, or CSV: code[,expires_at].")],
    low_water: LowWater = None,
) -> None:
    """Add the codes of a file to a pool; nothing is added when any line is bad."""
    name = _pool(pool)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{file}: cannot read it ({type(exc).__name__})") from None
    read, problems = rules.read_lines(lines)
    if problems:
        raise UserError("\n".join(f"{file}:{p}" for p in problems))
    _, sessions = open_database(load_settings())
    with sessions.begin() as s:
        added = coupons.import_codes(s, name, read, parse_now(None), low_water)
    console.print(f"{name}: {added.added} codes added", highlight=False)
    if added.duplicates:
        shown = ", ".join(str(n) for n in added.duplicates[:10])
        more = "..." if len(added.duplicates) > 10 else ""
        console.print(
            f"{len(added.duplicates)} duplicates ignored (already in the pool), lines {shown}{more}",
            highlight=False,
        )


@coupons_app.command("generate")
def generate(
    pool: Pool,
    count: Annotated[int, typer.Option("--count", min=1, metavar="N", help="How many codes to add.")],
    pattern: Annotated[
        str, typer.Option("--pattern", metavar="PATTERN", help="'#' a digit, '?' a letter: WELCOME-####-????")
    ],
    low_water: LowWater = None,
) -> None:
    """Add COUNT random codes of PATTERN, unique within the pool."""
    name = _pool(pool)
    _, sessions = open_database(load_settings())
    try:
        with sessions.begin() as s:
            added = coupons.generate(s, name, pattern, count, parse_now(None), low_water)
    except rules.CouponError as exc:
        raise UserError(str(exc)) from None
    console.print(f"{name}: {added.added} codes generated", highlight=False)


@coupons_app.command("status")
def status(
    pool: Annotated[str | None, typer.Argument(metavar="POOL", help="One pool (default: all).")] = None,
    as_json: AsJson = False,
) -> None:
    """Each pool's codes: total, assigned, redeemed and left."""
    _, sessions = open_database(load_settings())
    with sessions() as s:
        found = coupons.status(s, parse_now(None), _pool(pool) if pool is not None else None)
    if pool is not None and not found:
        raise UserError(f"no coupon pool {pool!r}")
    if as_json:
        print_json([p.as_dict() for p in found])
        return
    out = table("pool", "total", "assigned", "redeemed", "left", "low water", title="Coupon pools")
    for p in found:
        out.add_row(p.pool, str(p.total), str(p.assigned), str(p.redeemed), str(p.left), str(p.low_water))
    print_table(out)
