"""Engine, sessions and schema migrations (Alembic, shipped in the package)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from automation.errors import DatabaseUnavailable, UserError
from automation.store.schema_head import HEAD
from automation.store.suppressions import sql_address_hash

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
#: URL schemes hosting platforms set; both mean PostgreSQL through psycopg 3.
PLAIN_POSTGRES = ("postgres", "postgresql")


def safe_url(url: str) -> str:
    """The URL without its password, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
    # PostgreSQL gets the same function from the `live_data` migration.
    dbapi_conn.create_function("addr_hash", 1, sql_address_hash, deterministic=True)


def json_text(value: Any) -> str:
    """JSON as SQLite stores it: keys as written, since its JSON paths do not match `\\u` escapes."""
    return json.dumps(value, ensure_ascii=False)


#: The execution option that has psycopg prepare a statement at once (`_execute_prepared`).
PREPARED = "automation_prepared"
#: The threshold of an engine made with `prepare=False`: no statement repeats this often, so
#: only those run with `PREPARED` are prepared (psycopg's None would refuse even those).
NEVER = 2**62


def _execute_prepared(cursor: Any, statement: str, parameters: Any, context: Any) -> bool | None:
    """Run a statement whose execution options ask for it prepared (`PREPARED`), planned once."""
    if not context.execution_options.get(PREPARED):
        return None
    cursor.execute(statement, parameters, prepare=True)
    return True


def make_engine(url: str, pre_ping: bool = True, prepare: bool = True) -> Engine:
    """Build an engine for the URL and check that it connects (one-line error if not).

    `pre_ping` tests each pooled connection before use (one round trip per transaction):
    worth it where requests are rare, not on a worker's hot path, whose failed message
    Dramatiq retries on a fresh connection after a database restart.
    `prepare` lets psycopg prepare a statement once it repeats, so its plan is cached per
    connection. Without it every statement is planned with its values: a plan cached while
    `customers` was small kept scanning it, comparing every row with every id of the
    tracking API's batch (40-100 ms a batch at 20k customers), until the next ANALYZE.
    A statement that only reaches tables through unique indexes can ask to be prepared anyway,
    with the `PREPARED` execution option.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(f"DATABASE_URL is not a database URL: {safe_url(url)}") from None
    if parsed.drivername in PLAIN_POSTGRES:
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed, connect_args={"timeout": 30}, json_serializer=json_text)
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(
                parsed,
                pool_pre_ping=pre_ping,
                pool_size=5,
                max_overflow=10,
                connect_args={} if prepare else {"prepare_threshold": NEVER},
            )
            event.listen(engine, "do_execute", _execute_prepared)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise UserError(f"unsupported database URL {safe_url(url)}: {exc}") from None
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "no answer"
        raise DatabaseUnavailable(f"cannot connect to database {safe_url(url)}: {reason}") from None
    return engine


def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    """Alembic's configuration for this schema on `engine` (tests also migrate to older revisions).

    Alembic (with Mako and Pygments behind it, about 12 MB) is imported here only, so that the
    always-on processes, which merely check the schema, never load it.
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> str:
    """Bring the schema to the newest revision; returns that revision."""
    from alembic import command

    command.upgrade(alembic_config(engine), "head")
    return HEAD


def require_schema(engine: Engine) -> None:
    """Refuse to run against a database whose schema is missing or behind."""
    with engine.connect() as conn:
        current = None
        if inspect(conn).has_table("alembic_version"):
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if current != HEAD:
        raise UserError(
            f"the database schema is {'missing' if current is None else 'out of date'}; "
            "run `automation db upgrade` first"
        )
