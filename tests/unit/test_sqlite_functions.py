"""The SQL functions SQLite gets at connect behave as PostgreSQL's do."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, literal, select

from automation.store import db
from automation.store.suppressions import address_hash


def test_addr_hash_of_no_address_is_null_not_an_error(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.scalar(select(func.addr_hash(literal(None)))) is None
        assert conn.scalar(select(func.addr_hash("ada@example.com"))) == address_hash("ada@example.com")
    engine.dispose()
