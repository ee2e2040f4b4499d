"""The audit log: every editor action, with who and when, read back on the page it changed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from automation.store.models import AuditEntry

SHOWN = 20


@dataclass(frozen=True)
class Action:
    at: dt.datetime
    actor: str
    action: str
    target_id: str
    detail: dict[str, Any]


def record(
    s: Session, actor: str, action: str, target: tuple[str, str], now: dt.datetime, **detail: Any
) -> None:
    kind, ident = target
    s.add(AuditEntry(at=now, actor=actor, action=action, target_kind=kind, target_id=ident, detail=detail))


def for_target(s: Session, kind: str, ident: str | None = None, limit: int = SHOWN) -> list[Action]:
    """The latest actions on one object, or on every object of a kind."""
    stmt = select(AuditEntry).where(AuditEntry.target_kind == kind)
    if ident is not None:
        stmt = stmt.where(AuditEntry.target_id == ident)
    rows = s.scalars(stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit))
    return [Action(r.at, r.actor, r.action, r.target_id, r.detail or {}) for r in rows]
