"""The suppression list: addresses never to message on a channel, and why; its one writer.

Addresses are kept in the normal form ingest keeps customers' in
(`core.addresses`), so a lookup is one equality. The CLI, the dashboard, the
provider webhooks, the unsubscribe link and the worker all write through `add`
(entries already normal) or `suppress` (one address as a provider gave it).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.orm import Session

from automation.core.addresses import AddressError, channel_of, normalize
from automation.store.models import Suppression
from automation.store.sqlutil import insert_ignore


def address_hash(address: str) -> str:
    """The one-way form an erased customer's suppressed address is kept in (SQL: `addr_hash`)."""
    return "sha256:" + hashlib.sha256(address.encode()).hexdigest()


def sql_address_hash(address: str | None) -> str | None:
    """`addr_hash` as SQLite runs it: NULL for NULL (a customer without a phone), like PostgreSQL's."""
    return None if address is None else address_hash(address)


def matches(address: ColumnElement[str | None]) -> ColumnElement[bool]:
    """SQL: a suppression row is for this address, kept in clear or as its hash."""
    return or_(Suppression.address == address, Suppression.address == func.addr_hash(address))


@dataclass(frozen=True)
class Entry:
    channel: str
    address: str
    reason: str


def parse_import(lines: Sequence[str], default_reason: str) -> tuple[list[Entry], list[str]]:
    """Entries and `LINE: problem`s from an import file.

    Two forms: a CSV whose header names an `address` column (and optionally
    `channel` and `reason`), or one address per line. Blank lines and lines
    starting with `#` are ignored; the channel is taken from the address when
    not given (an @ means email).
    """
    entries: list[Entry] = []
    problems: list[str] = []
    first = next((n for n, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return entries, problems
    header = [c.strip().lower() for c in next(csv.reader([lines[first]]))]
    rows: list[tuple[int, dict[str, str]]] = []
    if "address" in header:
        for n in range(first + 1, len(lines)):
            cells = next(csv.reader([lines[n]]), [])
            rows.append((n, dict(zip(header, cells, strict=False))))
    else:
        rows = [(n, {"address": lines[n]}) for n in range(first, len(lines))]
    for n, row in rows:
        address = (row.get("address") or "").strip()
        if not address or address.startswith("#"):
            continue
        channel = (row.get("channel") or "").strip().lower() or channel_of(address)
        try:
            entries.append(
                Entry(
                    channel, normalize(channel, address), (row.get("reason") or "").strip() or default_reason
                )
            )
        except AddressError as exc:
            problems.append(f"{n + 1}: {exc}")
    return entries, problems


def add(session: Session, entries: Sequence[Entry], source: str, at: dt.datetime) -> int:
    """Insert entries (already normalized); an address already suppressed keeps its first reason."""
    rows = [
        {
            "channel": e.channel,
            "address": e.address,
            "reason": e.reason[:64],
            "source": source,
            "created_at": at,
        }
        for e in entries
    ]
    return len(insert_ignore(session, Suppression.__table__, rows, ["channel", "address"], ["id"]))


def suppress(session: Session, channel: str, address: str, reason: str, source: str, at: dt.datetime) -> bool:
    """Suppress one address as a provider or a link gave it; True when it was not suppressed yet.

    Put in normal form first; text that is no address of the channel is kept as
    given (trimmed), since refusing a provider's word would only lose it.
    """
    return add(session, [Entry(channel, _key(channel, address), reason)], source, at) == 1


def of_address(channel: str, address: str) -> ColumnElement[bool]:
    """SQL: the suppression of this known address on `channel`, kept in clear or as its hash."""
    return and_(Suppression.channel == channel, Suppression.address.in_([address, address_hash(address)]))


def lift(session: Session, channel: str, address: str, reason: str) -> None:
    """Remove a suppression of the address made for `reason` (a provider's resubscribe)."""
    session.execute(
        delete(Suppression).where(of_address(channel, _key(channel, address)), Suppression.reason == reason)
    )


def _key(channel: str, address: str) -> str:
    try:
        return normalize(channel, address)
    except AddressError:
        return address.strip()


def remove(session: Session, channel: str, address: str) -> bool:
    deleted = session.execute(
        delete(Suppression)
        .where(Suppression.channel == channel, Suppression.address == address)
        .returning(Suppression.id)
    ).first()
    return deleted is not None


def listing(session: Session, channel: str | None) -> list[Suppression]:
    stmt = select(Suppression).order_by(Suppression.created_at.desc(), Suppression.id.desc())
    if channel:
        stmt = stmt.where(Suppression.channel == channel)
    return list(session.scalars(stmt))
