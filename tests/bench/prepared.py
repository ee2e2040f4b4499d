"""Ingested data sets kept between benchmark runs: generating and ingesting 1M customers takes minutes.

A data set of N customers and a seed is ingested once into a database named by
both; it gets that name only when its ingest finished (it is loaded under a
`_loading` name and renamed), so a crash never leaves a half-made set behind a
good name. Each run then measures a copy (`CREATE DATABASE ... TEMPLATE`, a file
copy) that is migrated to the current head and dropped at the end, so what a run
writes never reaches the kept set.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from automation.store import db
from tests.bench.phases import Config, run_phase
from tests.bench.run import _admin_url


def _admin(sql: str, **params: Any) -> list[Any]:
    engine = create_engine(make_url(_admin_url()), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            result = conn.execute(text(sql), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def _url(name: str) -> str:
    return make_url(_admin_url()).set(database=name).render_as_string(hide_password=False)


def _exists(name: str) -> bool:
    return bool(_admin("SELECT 1 FROM pg_database WHERE datname = :n", n=name))


def kept_name(customers: int, seed: int) -> str:
    return f"automation_bench_set_{customers}_{seed}"


def ensure(cfg: Config) -> tuple[str, dict[str, Any]]:
    """The kept data set for cfg's customers and seed, made if missing; its name and how it was made."""
    name = kept_name(cfg.customers, cfg.seed)
    if _exists(name):
        return name, {"reused": True}
    loading = f"{name}_loading"
    _admin(f'DROP DATABASE IF EXISTS "{loading}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{loading}"')
    engine = db.make_engine(_url(loading))
    db.upgrade(engine)
    engine.dispose()
    made: dict[str, Any] = {"reused": False}
    with tempfile.TemporaryDirectory(prefix="automation-bench-") as work:
        load = dataclasses.replace(cfg, db_url=_url(loading), data_file=str(Path(work) / "records.jsonl"))
        for phase in ("generate", "ingest"):
            made[phase] = run_phase(phase, load)
            print(f"{cfg.customers} customers, {phase}: {made[phase]['seconds']:.1f} s", flush=True)
    _admin(f'ALTER DATABASE "{loading}" RENAME TO "{name}"')
    return name, made


@contextmanager
def copy_of(kept: str, copy: str) -> Iterator[str]:
    """A migrated copy of a kept data set for one run; its URL, dropped afterwards."""
    _admin(f'CREATE DATABASE "{copy}" TEMPLATE "{kept}"')
    try:
        engine = db.make_engine(_url(copy))
        db.upgrade(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        engine.dispose()
        yield _url(copy)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
