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

from automation.advance.step import Choices, JudgedKind, Judging
from automation.core.filters import describe
from automation.core.journeys import BranchStep
from automation.core.walk import Choice
from automation.store.filter_sql import compile_filter
from automation.store.models import Customer, Enrollment


class BranchKind(JudgedKind[BranchStep]):
    name = "branch"
    model = BranchStep

    def choose(self, body: BranchStep, judging: Judging) -> Choices:
        by_instant: dict[dt.datetime, list[int]] = defaultdict(list)
        for eid, at in judging.reached:
            by_instant[at].append(eid)
        holds: set[int] = set()
        for at, ids in by_instant.items():
            stmt = (
                select(Enrollment.id)
                .join(Customer, Customer.id == Enrollment.customer_id)
                .where(Enrollment.id.in_(ids))
                .where(compile_filter(body.if_, Enrollment.id, at))
            )
            holds.update(judging.session.scalars(stmt))
        return {eid: Choice("then" if eid in holds else "else", at) for eid, at in judging.reached}

    def waits_for(self, body: BranchStep, context: Mapping[str, Any]) -> str:
        return f"to branch on {describe(body.if_)}"


KIND = BranchKind()
