"""The suppression list: addresses never to message on a channel, and why.

Addresses are kept in the same normal form as ingest keeps customers' (email
stripped and lower-cased, phone in E.164), so a lookup is one equality.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session

from automation.core.statuses import Channel
from automation.store.models import Suppression
from automation.store.sqlutil import insert_ignore

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_PHONE = re.compile(r"^\+[0-9]{7,15}$")


class AddressError(ValueError):
    """Not an address of the channel."""


def normalize(channel: str, address: str) -> str:
    """The address as stored and compared; raises `AddressError` when it is not one."""
    if channel == Channel.EMAIL:
        value = address.strip().lower()
        if not _EMAIL.match(value):
            raise AddressError(f"{address.strip()!r} is not an email address")
        return value
    if channel == Channel.SMS:
        value = re.sub(r"[\s\-().]", "", address)
        if not _PHONE.match(value):
            raise AddressError(f"{address.strip()!r} is not a phone number in E.164 form, like +15551234567")
        return value
    raise AddressError(f"unknown channel {channel!r} (email or sms)")


def address_hash(address: str) -> str:
    """The one-way form an erased customer's suppressed address is kept in (SQL: `addr_hash`)."""
    return "sha256:" + hashlib.sha256(address.encode()).hexdigest()


def matches(address: ColumnElement[str | None]) -> ColumnElement[bool]:
    """SQL: a suppression row is for this address, kept in clear or as its hash."""
    return or_(Suppression.address == address, Suppression.address == func.addr_hash(address))


def channel_of(address: str) -> Channel:
    """`email` for anything with an @, else `sms`."""
    return Channel.EMAIL if "@" in address else Channel.SMS


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


def reason_for(session: Session, channel: str, address: str) -> str | None:
    """Why the address is suppressed on the channel, or None."""
    try:
        key = normalize(channel, address)
    except AddressError:
        key = address
    return session.scalar(
        select(Suppression.reason)
        .where(Suppression.channel == channel, Suppression.address.in_([key, address_hash(key)]))
        .limit(1)
    )
