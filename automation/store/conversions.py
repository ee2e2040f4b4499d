"""The conversion ledger: the deliveries a goal event followed, kept so that reports count its rows
instead of joining every delivery of a journey with the customer's events.

The rule is written once, here (`attributed`). A delivery *converted* when it was sent and a goal
event of its customer followed within the goal window after it fell due: what `automation status`,
the overview and a journey's funnel count (per enrollment). It is *anchored* when it is the first
delivery of its step (no `retry_of`, whatever its status, a held-out one included) and a goal event
followed within the window after the step first fell due: what an experiment counts, `revenue`
being the `total` of those events.

The goal lives in the journey's YAML, not in the database, so no trigger can apply the rule.
Triggers append instead the customer of every change of a delivery or an event that could move it
to `conversion_queue`, and `fold` recomputes those customers' rows with the catalog's goals (and a
whole journey's, when its goal is not the one its rows were computed for). A read after a fold is
exact; every reader folds first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from automation.core.journeys import Goal
from automation.core.statuses import DeliveryStatus
from automation.store.filter_sql import json_typed
from automation.store.models import Conversion, ConversionGoal, ConversionQueue, Delivery
from automation.store.models import Event as EventRow
from automation.store.sqlutil import plus

#: What a fold takes on PostgreSQL, so that two folds never recompute the same rows at once.
LOCK = 0x636F6E76  # "conv"
_TOUCHED = "conversion_touched"
_DISTINCT = "SELECT DISTINCT customer_id FROM conversion_queue"
#: The columns of each source table whose change can move the rule (besides the row's customer).
_DELIVERY_COLUMNS = ("journey_id", "step_id", "arm", "enrollment_id", "due_at", "first_due_at", "retry_of")
_EVENT_COLUMNS = ("name", "occurred_at", "properties")
_SENT = f"'{DeliveryStatus.SENT.value}'"
_COLUMNS = [c.name for c in Conversion.__table__.columns]


def attributed(s: Session, journey_id: str, goal: Goal, *where: ColumnElement[bool]) -> Select[Any]:
    """The ledger's rows for the deliveries of `journey_id` that `where` selects: the rule itself."""
    d, e = Delivery, EventRow
    anchor = func.coalesce(d.first_due_at, d.due_at)
    after_send = and_(
        d.status == DeliveryStatus.SENT,
        e.occurred_at > d.due_at,
        e.occurred_at <= plus(s, d.due_at, goal.within),
    )
    after_step = and_(
        d.retry_of.is_(None), e.occurred_at > anchor, e.occurred_at <= plus(s, anchor, goal.within)
    )
    total = json_typed("total", "number", e.properties)
    columns: list[Any] = [
        d.id,
        d.journey_id,
        d.step_id,
        d.arm,
        d.enrollment_id,
        d.customer_id,
        d.due_at,
        cast(func.max(case((after_send, 1), else_=0)), Boolean),
        cast(func.max(case((after_step, 1), else_=0)), Boolean),
        func.sum(case((after_step, total))),
    ]
    return (
        select(*columns)
        .join(e, and_(e.customer_id == d.customer_id, e.name == goal.event, or_(after_send, after_step)))
        .where(d.journey_id == journey_id, *where)
        .group_by(d.id)
    )


def _fill(s: Session, journey_id: str, goal: Goal, *where: ColumnElement[bool]) -> None:
    s.execute(insert(Conversion).from_select(_COLUMNS, attributed(s, journey_id, goal, *where)))


def _touched(s: Session) -> int:
    """Move the queued customers into a temporary table (once each); how many there are.

    PostgreSQL deletes what its snapshot sees, so a change committed meanwhile stays queued for
    the next fold; SQLite has one writer at a time, and a bound on the id does the same.
    """
    postgresql = s.get_bind().dialect.name == "postgresql"
    s.execute(text(f"CREATE TEMP TABLE IF NOT EXISTS {_TOUCHED} (customer_id VARCHAR(128) PRIMARY KEY)"))
    s.execute(text(f"DELETE FROM {_TOUCHED}"))
    if postgresql:
        s.execute(
            text(
                "WITH gone AS (DELETE FROM conversion_queue RETURNING customer_id) "
                f"INSERT INTO {_TOUCHED} SELECT DISTINCT customer_id FROM gone"
            )
        )
    else:
        last = s.scalar(select(func.max(ConversionQueue.id))) or 0
        s.execute(
            text(
                f"INSERT INTO {_TOUCHED} SELECT DISTINCT customer_id FROM conversion_queue WHERE id <= :last"
            ),
            {"last": last},
        )
        s.execute(delete(ConversionQueue).where(ConversionQueue.id <= last))
    count = int(s.scalar(text(f"SELECT count(*) FROM {_TOUCHED}")) or 0)
    if count and postgresql:
        s.execute(text(f"ANALYZE {_TOUCHED}"))
    return count


def _regoaled(s: Session, goals: Mapping[str, Goal]) -> list[str]:
    """Journeys whose rows were computed for another goal (or none): their rows and their goal dropped."""
    kept = {jid: (event, within_s) for jid, event, within_s in s.execute(select(ConversionGoal.__table__))}
    wanted = {jid: (g.event, int(g.within.total_seconds())) for jid, g in goals.items()}
    stale = sorted(jid for jid in kept.keys() | wanted.keys() if kept.get(jid) != wanted.get(jid))
    if stale:
        s.execute(delete(Conversion).where(Conversion.journey_id.in_(stale)))
        s.execute(delete(ConversionGoal).where(ConversionGoal.journey_id.in_(stale)))
    return [jid for jid in stale if jid in wanted]


def fold(s: Session, goals: Mapping[str, Goal]) -> None:
    """Bring the ledger up to date for the journeys' `goals` (every journey that has one)."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(select(func.pg_advisory_xact_lock(LOCK)))
    fresh = _regoaled(s, goals)
    if _touched(s):
        customers = text(f"SELECT customer_id FROM {_TOUCHED}").columns(
            customer_id=Conversion.customer_id.type
        )
        s.execute(delete(Conversion).where(Conversion.customer_id.in_(customers)))
        for jid, goal in sorted(goals.items()):
            if jid not in fresh:
                _fill(s, jid, goal, Delivery.customer_id.in_(customers))
    for jid in fresh:
        goal = goals[jid]
        _fill(s, jid, goal)
        s.execute(
            insert(ConversionGoal).values(
                journey_id=jid, event=goal.event, within_s=int(goal.within.total_seconds())
            )
        )


# ---------------------------------------------------------------- the triggers that queue customers


def _moved(old: str, new: str, columns: tuple[str, ...], distinct: str) -> str:
    return " OR ".join(f"{old}.{c} {distinct} {new}.{c}" for c in ("customer_id", *columns))


def _delivery_moved(old: str, new: str, distinct: str) -> str:
    sent = f"({old}.status = {_SENT}) {distinct} ({new}.status = {_SENT})"
    return f"{sent} OR {_moved(old, new, _DELIVERY_COLUMNS, distinct)}"


def _event_moved(old: str, new: str, distinct: str) -> str:
    return _moved(old, new, _EVENT_COLUMNS, distinct)


_SOURCES = (("deliveries", _delivery_moved), ("events", _event_moved))


def _postgresql(source: str, moved: Any) -> list[str]:
    fn = f"conversion_queue_{source}"
    changed = f"FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE {moved('o', 'n', 'IS DISTINCT FROM')}"
    body = (
        "  IF TG_OP = 'INSERT' THEN\n"
        "    INSERT INTO conversion_queue (customer_id) SELECT DISTINCT customer_id FROM new_rows;\n"
        "  ELSIF TG_OP = 'DELETE' THEN\n"
        "    INSERT INTO conversion_queue (customer_id) SELECT DISTINCT customer_id FROM old_rows;\n"
        "  ELSIF TG_OP = 'UPDATE' THEN\n"
        f"    INSERT INTO conversion_queue (customer_id) SELECT n.customer_id {changed}\n"
        f"      UNION SELECT o.customer_id {changed};\n"
        "  ELSE\n"
        "    DELETE FROM conversions;\n"
        "  END IF;\n"
    )
    refs = {
        "INSERT": "REFERENCING NEW TABLE AS new_rows",
        "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "DELETE": "REFERENCING OLD TABLE AS old_rows",
        "TRUNCATE": "",  # no rows to name: nothing converts without the table's rows
    }
    out = [
        f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n{body}  RETURN NULL;\nEND\n$$"
    ]
    for event, ref in refs.items():
        head = f"CREATE TRIGGER {fn}_{event.lower()} AFTER {event} ON {source}"
        out.append(" ".join(p for p in (head, ref, f"FOR EACH STATEMENT EXECUTE FUNCTION {fn}()") if p))
    return out


def _sqlite(source: str, moved: Any, columns: tuple[str, ...]) -> list[str]:
    name = f"conversion_queue_{source}"
    queue = "INSERT INTO conversion_queue (customer_id)"
    watched = ", ".join(("customer_id", *columns))
    return [
        f"CREATE TRIGGER {name}_insert AFTER INSERT ON {source} BEGIN {queue} VALUES (new.customer_id); END",
        f"CREATE TRIGGER {name}_update AFTER UPDATE OF {watched} ON {source} "
        f"WHEN {moved('old', 'new', 'IS NOT')} "
        f"BEGIN {queue} SELECT new.customer_id UNION SELECT old.customer_id; END",
        f"CREATE TRIGGER {name}_delete AFTER DELETE ON {source} BEGIN {queue} VALUES (old.customer_id); END",
    ]


def create(dialect: str) -> list[str]:
    """The DDL of the triggers that queue customers (and PostgreSQL's trigger functions)."""
    if dialect == "postgresql":
        return [sql for source, moved in _SOURCES for sql in _postgresql(source, moved)]
    columns = {"deliveries": ("status", *_DELIVERY_COLUMNS), "events": _EVENT_COLUMNS}
    return [sql for source, moved in _SOURCES for sql in _sqlite(source, moved, columns[source])]


def drop(dialect: str) -> list[str]:
    """The DDL that removes what `create` made."""
    if dialect == "postgresql":
        return [f"DROP FUNCTION IF EXISTS conversion_queue_{source}() CASCADE" for source, _ in _SOURCES]
    return [
        f"DROP TRIGGER IF EXISTS conversion_queue_{source}_{event}"
        for source, _ in _SOURCES
        for event in ("insert", "update", "delete")
    ]
