"""`automation deliveries list`: the delivery ledger, newest first."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from automation.cli.app import app, console
from automation.config import load_settings
from automation.core.statuses import DeliveryStatus
from automation.errors import UserError
from automation.processes.runtime import open_database
from automation.store.models import Delivery

deliveries_app = typer.Typer(help="The delivery ledger: every message and its outcome.", no_args_is_help=True)
app.add_typer(deliveries_app, name="deliveries")


def _when(value: object) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value is not None else ""


@deliveries_app.command("list")
def list_(
    customer: Annotated[str | None, typer.Option(help="Only this customer id.")] = None,
    journey: Annotated[str | None, typer.Option(help="Only this journey id.")] = None,
    status: Annotated[
        str | None, typer.Option(help=f"Only this status: {', '.join(DeliveryStatus)}.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = 50,
) -> None:
    """Deliveries with their status and reason, newest due first."""
    if status is not None and status not in tuple(DeliveryStatus):
        raise UserError(f"unknown status {status!r} (one of {', '.join(DeliveryStatus)})")
    _, sessions = open_database(load_settings())
    stmt = select(Delivery).order_by(Delivery.due_at.desc(), Delivery.id.desc()).limit(limit)
    if customer is not None:
        stmt = stmt.where(Delivery.customer_id == customer)
    if journey is not None:
        stmt = stmt.where(Delivery.journey_id == journey)
    if status is not None:
        stmt = stmt.where(Delivery.status == status)
    with sessions() as s:
        rows = list(s.scalars(stmt))
    table = Table("ID", "Due (UTC)", "Journey", "Step", "Customer", "Channel", "Status", "Reason", "Tries")
    for d in rows:
        table.add_row(
            str(d.id),
            _when(d.due_at),
            d.journey_id,
            d.step_id,
            d.customer_id,
            d.channel,
            d.status,
            d.reason or "",
            str(d.attempts),
        )
    console.print(table)
    console.print(f"{len(rows)} deliveries shown")
