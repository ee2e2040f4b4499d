"""Running counts of the ledger kept by the database itself: what the dashboard sums instead of a scan.

A trigger on `deliveries` (and one on `provider_events`) appends, for every
statement that inserts, changes or deletes rows, the change of each count by
key: the rows as they were count -1, as they are +1, summed per key and kept
only where something moved. A sum over a key is therefore exact at every
instant, in the transaction of the change, whoever wrote it (the worker, the
webhooks, the tick, campaigns, erasure). Appending takes no lock on a shared
row, so concurrent writers never wait on each other; `compact` folds the
appended changes into one row per key so that reads stay short.

Each count is a SQL expression over one row, written once here: the same
expression builds the triggers, fills the table from existing rows and is
what a scan of the ledger would count (`automation.store.engagement`).
On PostgreSQL the triggers are per statement over its transition tables; on
SQLite, per row.

A count of distinct enrollments (how many reached a stage of the funnel) is
kept in two levels. Triggers append the changes per journey and enrollment
(`REACHED`, `CONVERTED`) to `reach_changes`, and `fold_reach` adds them in
place, in key order, to one row per journey and enrollment (`reach`); a plain
tally over that table (`FUNNEL`) counts, per journey, the rows above zero at
each stage. Writers still only append; a read of `FUNNEL` after a fold is
exact, and every reader folds first (`compact` does).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Dialect,
    and_,
    case,
    column,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy import table as table_clause
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from automation.core import outcomes
from automation.core.statuses import DeliveryStatus
from automation.store import engagement
from automation.store.models import (
    Conversion,
    Delivery,
    DeliveryTally,
    Enrollment,
    EnrollmentTally,
    ProviderEvent,
    ProviderEventTally,
    Reach,
    ReachChange,
    ReachTally,
    Watermark,
)
from automation.store.sqlutil import insert_for, utc_day

#: A row's columns by name: attribute access on a table, a transition table or SQLite's NEW/OLD.
Row = Any


class _Pseudo:
    """SQLite's `new`/`old` in a row trigger: `new.status` with no FROM."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, col: str) -> ColumnElement[Any]:
        return literal_column(f"{self._name}.{col}")


@dataclass(frozen=True)
class Tally:
    """What one table of counts keeps: the source table, its key columns and its counts, each per row
    (the first, `n`, counts the rows themselves, except in a tally folded `into` another table)."""

    model: type[Any]
    #: The counted table's model.
    counted: type[Any]
    #: Columns of the source that move a key or a count (an UPDATE of others fires nothing).
    watched: tuple[str, ...]
    keys: Callable[[Row, str], dict[str, ColumnElement[Any]]]
    counts: Callable[[Row], dict[str, ColumnElement[Any]]]
    #: The table its changes are folded into, one row per key (`fold_reach`); None: compacted in place.
    into: type[Any] | None = None

    @property
    def name(self) -> str:
        return str(self.model.__tablename__)

    @property
    def trigger(self) -> str:
        """What its triggers are named after: a table of changes to fold has one tally per source."""
        return f"{self.name}_{self.source}" if self.into is not None else self.name

    @property
    def source(self) -> str:
        return str(self.counted.__tablename__)

    @property
    def key_names(self) -> list[str]:
        return list(self.keys(_Pseudo("x"), "sqlite"))

    @property
    def count_names(self) -> list[str]:
        return list(self.counts(_Pseudo("x")))

    @property
    def columns(self) -> list[str]:
        return [*self.key_names, *self.count_names]


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _delivery_keys(d: Row, dialect: str) -> dict[str, ColumnElement[Any]]:
    return {
        "journey_id": d.journey_id,
        "step_id": d.step_id,
        "channel": d.channel,
        "status": d.status,
        "arm": d.arm,
        "day": utc_day(dialect, d.due_at),
    }


def _delivery_counts(d: Row) -> dict[str, ColumnElement[Any]]:
    said = engagement.feedback(d)
    return {
        "n": literal_column("1"),
        "opened": _flag(d.opened_at.is_not(None)),
        "clicked": _flag(d.clicked_at.is_not(None)),
        **{name: _flag(said[name]) for name in engagement.FEEDBACK},
    }


DELIVERIES = Tally(
    DeliveryTally,
    Delivery,
    (
        "journey_id",
        "step_id",
        "channel",
        "status",
        "arm",
        "due_at",
        "provider_status",
        *outcomes.REACHED_FLAGS,
    ),
    _delivery_keys,
    _delivery_counts,
)
PROVIDER_EVENTS = Tally(
    ProviderEventTally,
    ProviderEvent,
    ("provider", "event_type", "occurred_at"),
    lambda e, dialect: {
        "day": utc_day(dialect, e.occurred_at),
        "provider": e.provider,
        "event_type": e.event_type,
    },
    lambda e: {"n": literal_column("1")},
)


def _reached(d: Row) -> dict[str, ColumnElement[Any]]:
    sent = d.status == DeliveryStatus.SENT.value
    return {
        "sent": _flag(sent),
        "delivered": _flag(and_(sent, d.provider_status == "delivered")),
        "opened": _flag(and_(sent, d.opened_at.is_not(None))),
        "clicked": _flag(and_(sent, d.clicked_at.is_not(None))),
    }


def _per_enrollment(r: Row, dialect: str) -> dict[str, ColumnElement[Any]]:
    return {"journey_id": r.journey_id, "enrollment_id": r.enrollment_id}


REACHED = Tally(
    ReachChange,
    Delivery,
    ("journey_id", "enrollment_id", "status", "provider_status", "opened_at", "clicked_at"),
    _per_enrollment,
    _reached,
    into=Reach,
)
CONVERTED = Tally(
    ReachChange,
    Conversion,
    ("journey_id", "enrollment_id", "converted"),
    _per_enrollment,
    lambda c: {"converted": _flag(c.converted)},
    into=Reach,
)
#: The funnel's stages after entry, in order: an enrollment is at a stage when one of its deliveries is.
STAGES = ("sent", "delivered", "opened", "clicked", "converted")
FUNNEL = Tally(
    ReachTally,
    Reach,
    ("journey_id", *STAGES),
    lambda r, dialect: {"journey_id": r.journey_id},
    lambda r: {"n": literal_column("1"), **{stage: _flag(getattr(r, stage) > 0) for stage in STAGES}},
)
ENROLLED = Tally(
    EnrollmentTally,
    Enrollment,
    ("journey_id", "state", "entered_at"),
    lambda e, dialect: {"journey_id": e.journey_id, "state": e.state, "day": utc_day(dialect, e.entered_at)},
    lambda e: {"n": literal_column("1")},
)
#: What migration dash21 made; `REACH`, what dash_reach added (a migration makes the triggers it names).
TALLIES = (DELIVERIES, PROVIDER_EVENTS)
REACH = (REACHED, CONVERTED, FUNNEL, ENROLLED)


def _change(tally: Tally, dialect: str, parts: Sequence[tuple[Row, int]]) -> Any:
    """INSERT of the summed change per key of the rows `parts` names, each counted with its sign."""
    selects = []
    for row, sign in parts:
        counts = {k: v if sign > 0 else -v for k, v in tally.counts(row).items()}
        labelled = {**tally.keys(row, dialect), **counts}
        selects.append(select(*(expr.label(name) for name, expr in labelled.items())))
    both = selects[0] if len(selects) == 1 else selects[0].union_all(*selects[1:])
    changed = both.subquery("changed")
    keys = [changed.c[k] for k in tally.key_names]
    sums = [func.sum(changed.c[k]).label(k) for k in tally.count_names]
    summed = (
        select(*keys, *sums).group_by(*keys).having(or_(*(func.sum(changed.c[s.name]) != 0 for s in sums)))
    )
    return insert(tally.model.__table__).from_select(tally.columns, summed)


def _sql(stmt: Any, dialect: Dialect) -> str:
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _postgresql(tally: Tally) -> list[str]:
    d = postgresql.dialect()
    new, old = (_columns(tally, "new_rows"), _columns(tally, "old_rows"))
    fn = f"{tally.trigger}_count"
    emptied = ", ".join(f"{c} = 0" for c in tally.count_names)
    body = {
        "INSERT": _sql(_change(tally, "postgresql", [(new, 1)]), d),
        "UPDATE": _sql(_change(tally, "postgresql", [(old, -1), (new, 1)]), d),
        "DELETE": _sql(_change(tally, "postgresql", [(old, -1)]), d),
        "TRUNCATE": (
            f"UPDATE {tally.name} SET {emptied}; UPDATE {tally.into.__tablename__} SET {emptied}"
            if tally.into is not None
            else f"DELETE FROM {tally.name}"
        ),
    }
    branches = "\n".join(
        f"  {'IF' if i == 0 else 'ELSIF'} TG_OP = '{op}' THEN\n    {sql};"
        for i, (op, sql) in enumerate(body.items())
    )
    out = [
        f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n{branches}\n  END IF;\n"
        "  RETURN NULL;\nEND\n$$"
    ]
    refs = {
        "INSERT": "REFERENCING NEW TABLE AS new_rows",
        # PostgreSQL refuses a column list beside transition tables: every UPDATE fires, and the
        # HAVING of the change keeps nothing for the ones that moved no count.
        "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "DELETE": "REFERENCING OLD TABLE AS old_rows",
        "TRUNCATE": "",  # no DELETE trigger sees a TRUNCATE: the counts of an empty table are none
    }
    for event, ref in refs.items():
        name = f"{tally.trigger}_{event.lower()}"
        head = f"CREATE TRIGGER {name} AFTER {event} ON {tally.source}"
        out.append(" ".join(p for p in (head, ref, f"FOR EACH STATEMENT EXECUTE FUNCTION {fn}()") if p))
    return out


def _sqlite(tally: Tally) -> list[str]:
    d = sqlite.dialect()
    new, old = _Pseudo("new"), _Pseudo("old")
    events = {
        "INSERT": [(new, 1)],
        "UPDATE OF " + ", ".join(tally.watched): [(old, -1), (new, 1)],
        "DELETE": [(old, -1)],
    }
    return [
        f"CREATE TRIGGER {tally.trigger}_{event.split()[0].lower()} AFTER {event} ON {tally.source} "
        f"FOR EACH ROW BEGIN {_sql(_change(tally, 'sqlite', parts), d)}; END"
        for event, parts in events.items()
    ]


def _columns(tally: Tally, name: str) -> Row:
    """The columns of a table shaped like the source (a transition table): every one a key or count reads."""
    return table_clause(name, *(column(c) for c in tally.watched)).c


def create(dialect: str, which: Sequence[Tally] = TALLIES) -> list[str]:
    """The DDL of the tallies' triggers (and PostgreSQL's trigger functions)."""
    make = _postgresql if dialect == "postgresql" else _sqlite
    return [sql for tally in which for sql in make(tally)]


def drop(dialect: str, which: Sequence[Tally] = TALLIES) -> list[str]:
    """The DDL that removes what `create` made (on PostgreSQL the function takes its triggers along)."""
    if dialect == "postgresql":
        return [f"DROP FUNCTION IF EXISTS {t.trigger}_count() CASCADE" for t in which]
    return [
        f"DROP TRIGGER IF EXISTS {t.trigger}_{event}"
        for t in which
        for event in ("insert", "update", "delete")
    ]


def fill(dialect: str, which: Sequence[Tally] = TALLIES) -> list[str]:
    """INSERTs counting the rows already in each source table (run once, when the triggers are made)."""
    d = postgresql.dialect() if dialect == "postgresql" else sqlite.dialect()
    return [_sql(_change(t, dialect, [(_columns(t, t.source), 1)]), d) for t in which]


def _key_sql(keys: Sequence[str]) -> str:
    """The key's columns, a NULL as '' so that equal keys compare equal (and hash) in a row value."""
    return ", ".join(f"coalesce({k}, '')" for k in keys)


def _summed(keys: Sequence[str], counts: Sequence[str]) -> tuple[str, str, str, str]:
    """The SQL of a fold: its columns, its GROUP BY, its sums, and the HAVING that keeps a key that moved."""
    sums = ", ".join(f"sum({c})" for c in counts)
    moved = " OR ".join(f"sum({c}) <> 0" for c in counts)
    return ", ".join((*keys, *counts)), ", ".join(keys), sums, moved


def compact(s: Session) -> None:
    """Fold the changes appended since the last fold into one row per key they touch.

    Only keys with a row newer than the tally's watermark are folded, so a fold costs what
    was appended since, not the table. On PostgreSQL one statement deletes what its snapshot
    sees and inserts the sums, so a change committed meanwhile is neither lost nor counted
    twice (a row it did not see is folded by a later pass); SQLite has one writer at a time.
    """
    fold_reach(s)
    for tally in (*TALLIES, *REACH):
        if tally.into is not None:
            continue
        t = tally.model.__table__
        mark = s.scalar(select(Watermark.last_id).where(Watermark.name == tally.name)) or 0
        cols, by, sums, moved = _summed(tally.key_names, tally.count_names)
        key = _key_sql(tally.key_names)
        fresh = f"SELECT DISTINCT {key} FROM {tally.name} WHERE id > :mark"
        if s.get_bind().dialect.name == "postgresql":
            s.execute(
                text(
                    f"WITH gone AS (DELETE FROM {tally.name} WHERE ({key}) IN ({fresh}) RETURNING {cols}) "
                    f"INSERT INTO {tally.name} ({cols}) "
                    f"SELECT {by}, {sums} FROM gone GROUP BY {by} HAVING {moved}"
                ),
                {"mark": mark},
            )
        else:
            last = s.scalar(select(func.max(t.c.id))) or 0
            touched = f"id <= :last AND ({key}) IN ({fresh})"
            params = {"mark": mark, "last": last}
            s.execute(
                text(
                    f"INSERT INTO {tally.name} ({cols}) SELECT {by}, {sums} FROM {tally.name} "
                    f"WHERE {touched} GROUP BY {by} HAVING {moved}"
                ),
                params,
            )
            s.execute(text(f"DELETE FROM {tally.name} WHERE {touched}"), params)
        stmt = insert_for(s, Watermark.__table__).values(
            name=tally.name, last_id=s.scalar(select(func.max(t.c.id))) or 0
        )
        s.execute(
            stmt.on_conflict_do_update(index_elements=["name"], set_={"last_id": stmt.excluded.last_id})
        )


def fold_reach(s: Session) -> None:
    """Add the appended changes of `reach` to its rows, in key order, and drop them.

    On PostgreSQL one statement deletes what its snapshot sees and adds it, so a change committed
    meanwhile waits for the next fold; a second fold at once waits on the rows the first deletes,
    then finds them gone. SQLite has one writer at a time, and a bound on the id does the same.
    """
    changes, into = ReachChange.__tablename__, Reach.__tablename__
    cols, by, sums, moved = _summed(REACHED.key_names, STAGES)
    added = ", ".join(f"{c} = {into}.{c} + excluded.{c}" for c in STAGES)
    upsert = f"ON CONFLICT ({by}) DO UPDATE SET {added}"
    if s.get_bind().dialect.name == "postgresql":
        s.execute(
            text(
                f"WITH gone AS (DELETE FROM {changes} RETURNING {cols}) "
                f"INSERT INTO {into} ({cols}) SELECT {by}, {sums} FROM gone "
                f"GROUP BY {by} HAVING {moved} ORDER BY {by} {upsert}"
            )
        )
        return
    last = s.scalar(select(func.max(ReachChange.id))) or 0
    s.execute(
        text(
            f"INSERT INTO {into} ({cols}) SELECT {by}, {sums} FROM {changes} WHERE id <= :last "
            f"GROUP BY {by} HAVING {moved} {upsert}"
        ),
        {"last": last},
    )
    s.execute(text(f"DELETE FROM {changes} WHERE id <= :last"), {"last": last})


def sums(s: Session, tally: Tally, by: Sequence[str], *where: ColumnElement[bool]) -> list[Any]:
    """Per value of the `by` keys, each count summed, over the keys `where` selects."""
    t = tally.model.__table__
    sums = (func.sum(t.c[c]).label(c) for c in tally.count_names)
    query = select(*(t.c[k] for k in by), *sums).where(*where)
    return list(s.execute(query.group_by(*(t.c[k] for k in by))))


Key = tuple[Any, ...]


def _matching(cols: Any, match: dict[str, Any]) -> list[ColumnElement[bool]]:
    return [
        cols[k].in_(list(v)) if isinstance(v, list | tuple | frozenset | set) else cols[k] == v
        for k, v in match.items()
    ]


def counted(
    s: Session,
    tally: Tally,
    by: Sequence[str],
    days: tuple[str | None, str | None] = (None, None),
    less: ColumnElement[bool] | None = None,
    match: dict[str, Any] | None = None,
) -> dict[Key, dict[str, int]]:
    """Per value of the `by` keys, the tally's counts over the rows whose keys `match` (none: no row).

    `days` bounds the UTC days (inclusive, `YYYY-MM-DD`, None: open); `less` selects,
    over the counted table itself, rows inside those days to leave out (the part of a
    day beyond an instant): they are counted by the same expressions and taken away.
    """
    t = tally.model.__table__
    match = match or {}
    where = _matching(t.c, match)
    first, last = days
    if first is not None:
        where.append(t.c.day >= first)
    if last is not None:
        where.append(t.c.day <= last)
    names = tally.count_names
    out: dict[Key, dict[str, int]] = {}
    for row in sums(s, tally, by, *where):
        out[tuple(row[: len(by)])] = {c: int(v) for c, v in zip(names, row[len(by) :], strict=True)}
    if less is not None:
        src = tally.counted.__table__.c
        keys = tally.keys(src, s.get_bind().dialect.name)
        taken = select(*(keys[k] for k in by), *(func.sum(v) for v in tally.counts(src).values()))
        for row in s.execute(taken.where(less, *_matching(src, match)).group_by(*(keys[k] for k in by))):
            have = out.setdefault(tuple(row[: len(by)]), dict.fromkeys(names, 0))
            for c, v in zip(names, row[len(by) :], strict=True):
                have[c] -= int(v or 0)
    return {key: counts for key, counts in out.items() if counts["n"]}  # a key of no rows is none


def _midnight(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


#: The day bins of a range and the rows of those days outside it (`span`).
Span = tuple[tuple[str | None, str | None], ColumnElement[bool] | None]


def span(col: Any, since: dt.datetime | None, until: dt.datetime | None, *, through: bool = False) -> Span:
    """The day bins that hold [since, until) (`through`: [since, until]) and, over `col`, the rows
    of those days outside it: what `counted` takes as `days` and `less`."""
    edges: list[ColumnElement[bool]] = []
    if since is not None and since != _midnight(since):
        edges.append(and_(col >= _midnight(since), col < since))
    if until is not None:
        tomorrow = _midnight(until) + dt.timedelta(days=1)
        edges.append(and_(col > until if through else col >= until, col < tomorrow))
    days = tuple(None if at is None else f"{_midnight(at):%Y-%m-%d}" for at in (since, until))
    return (days[0], days[1]), or_(*edges) if edges else None
