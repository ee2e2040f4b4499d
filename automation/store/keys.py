"""Write keys of the tracking API: made here, shown once, stored only as their SHA-256.

A key is 32 random bytes, so a plain SHA-256 cannot be reversed by guessing;
the stored and computed digests are compared in constant time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from automation.errors import UserError
from automation.store.db import PREPARED
from automation.store.models import WriteKey

PREFIX = "wk_"


def digest(key: str) -> str:
    """The stored form of a key; any text has one (a lone surrogate too: it then matches no key)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create(session: Session, name: str, now: dt.datetime) -> str:
    """A new key under `name`; the only time the key itself exists outside the caller."""
    name = name.strip()
    if not name or len(name) > 64:
        raise UserError("a key name must be 1 to 64 characters")
    key = PREFIX + secrets.token_urlsafe(32)
    try:
        with session.begin_nested():
            session.add(WriteKey(name=name, key_hash=digest(key), created_at=now))
    except IntegrityError:
        raise UserError(f"a key named {name!r} already exists") from None
    return key


def listing(session: Session) -> list[WriteKey]:
    return list(session.scalars(select(WriteKey).order_by(WriteKey.created_at, WriteKey.id)))


def revoke(session: Session, name: str, now: dt.datetime) -> None:
    """Revoke the key named `name`; revoking a revoked key is a no-op."""
    row = session.scalar(select(WriteKey).where(WriteKey.name == name))
    if row is None:
        raise UserError(f"no key named {name!r}")
    session.execute(
        update(WriteKey).where(WriteKey.id == row.id, WriteKey.revoked_at.is_(None)).values(revoked_at=now)
    )


_KEYS = WriteKey.__table__.c
# On the table's columns, not the entity's: no ORM compilation for each tracking request (a third
# of a batch's client-side cost); built once, its digest bound at each run, not built and given a
# cache key per request (a quarter of the lookup); prepared: a lookup by digest, planned once.
_LIVE = (
    select(_KEYS.name, _KEYS.key_hash)
    .where(_KEYS.revoked_at.is_(None), _KEYS.key_hash == bindparam("digest"))
    .execution_options(**{PREPARED: True})
)


def valid(session: Session, key: str) -> str | None:
    """The name of the live key `key` is, or None."""
    wanted = digest(key)
    row = session.execute(_LIVE, {"digest": wanted}).first()
    if row is None or not hmac.compare_digest(row.key_hash, wanted):
        return None
    return str(row.name)
