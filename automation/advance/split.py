"""Step kind `split`: weighted paths, each entrant down the one its assignment bucket falls in.

The path is `core.assignment.pick` of (journey, the split's step id, customer):
the same customer takes the same path on every tick and process, and a path's
steps then run as any others (an empty path rejoins the steps after the split).
Each choice is recorded in `split_decisions` (an empty path leaves no other
trace), which the experiment report counts per path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from automation.advance.step import Choices, JudgedKind, Judging
from automation.core import assignment
from automation.core.journeys import SplitStep
from automation.core.walk import Choice
from automation.store.models import Enrollment, SplitDecision
from automation.store.sqlutil import insert_ignore


class SplitKind(JudgedKind[SplitStep]):
    name = "split"
    model = SplitStep

    def choose(self, body: SplitStep, judging: Judging) -> Choices:
        paths = [(p.id, p.weight) for p in body.paths]
        reached_at = dict(judging.reached)
        rows = judging.session.execute(
            select(Enrollment.id, Enrollment.journey_id, Enrollment.customer_id).where(
                Enrollment.id.in_(list(reached_at))
            )
        )
        out: Choices = {}
        decided = []
        for eid, jid, cid in rows:
            path = assignment.pick(jid, judging.step_id, cid, paths).arm
            out[eid] = Choice(path, reached_at[eid])
            decided.append(
                {
                    "enrollment_id": eid,
                    "step_id": judging.step_id,
                    "journey_id": jid,
                    "path_id": path,
                    "decided_at": reached_at[eid],
                }
            )
        insert_ignore(
            judging.session,
            SplitDecision.__table__,
            decided,
            ("enrollment_id", "step_id"),
            one_statement=True,
        )
        return out

    def waits_for(self, body: SplitStep, context: Mapping[str, Any]) -> str:
        return f"to take one of the paths {', '.join(p.id for p in body.paths)}"


KIND = SplitKind()
