"""Step kind `branch`: `if` judged the instant an enrollment reaches it, then `then` or `else`.

The condition is the filter language plus engagement conditions on the
enrollment's earlier sends, as those stood at the instant the step was reached
(a late tick never lets a later open change the way taken).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from automation.advance.step import JudgedKind, Reached
from automation.core.filters import describe
from automation.core.journeys import BranchStep
from automation.core.walk import Choice
from automation.store.filter_sql import compile_filter
from automation.store.models import Customer, Enrollment

CHUNK = 5000


class BranchKind(JudgedKind[BranchStep]):
    name = "branch"
    model = BranchStep

    def choose(
        self, session: Session, step_id: str, body: BranchStep, reached: Reached, now: dt.datetime
    ) -> dict[int, Choice]:
        by_instant: dict[dt.datetime, list[int]] = defaultdict(list)
        for eid, at in reached:
            by_instant[at].append(eid)
        holds: set[int] = set()
        for at, ids in by_instant.items():
            for n in range(0, len(ids), CHUNK):
                stmt = (
                    select(Enrollment.id)
                    .join(Customer, Customer.id == Enrollment.customer_id)
                    .where(Enrollment.id.in_(ids[n : n + CHUNK]))
                    .where(compile_filter(body.if_, Enrollment.id, at))
                )
                holds.update(session.scalars(stmt))
        return {eid: Choice("then" if eid in holds else "else", at) for eid, at in reached}

    def waits_for(self, body: BranchStep, context: Mapping[str, Any]) -> str:
        return f"to branch on {describe(body.if_)}"


KIND = BranchKind()
