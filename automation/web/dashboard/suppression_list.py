"""The suppression list as the dashboard pages it: newest first, searchable by address prefix.

A prefix search is a range on the address index (`>= q` and `< q + U+FFFF`),
which any B-tree serves whatever the collation.
"""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from automation.store.models import Suppression
from automation.web.dashboard.paging import PAGE_SIZE, Page, newest_first


def search(s: Session, query: str | None, after: str | None, size: int = PAGE_SIZE) -> Page[Suppression]:
    stmt = select(Suppression)
    q = (query or "").strip().lower()
    if q:
        stmt = stmt.where(Suppression.address >= q, Suppression.address < q + "\uffff").order_by(
            Suppression.address, Suppression.id
        )
        if after:
            address, _, ident = after.rpartition("~")
            if ident.isdigit():
                stmt = stmt.where(
                    or_(
                        Suppression.address > address,
                        and_(Suppression.address == address, Suppression.id > int(ident)),
                    )
                )
        rows = list(s.scalars(stmt.limit(size + 1)))
        shown = rows[:size]
        more = f"{shown[-1].address}~{shown[-1].id}" if len(rows) > size else None
        return Page(shown, more)
    return newest_first(s, stmt, Suppression.created_at, Suppression.id, after, size)
