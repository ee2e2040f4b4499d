"""Where one entrant lands at one send step: the template, the arm, and whether the message is held out.

Transactional journeys are never held out (their messages always go); a
marketing message is held out when its customer is in the global control group
(`AUTOMATION_GLOBAL_HOLDOUT_PCT`) or in the journey's own `holdout`. A held-out
entrant still gets the arm and template it would have had, recorded on its
`held_out` delivery, so reports show what was withheld.
"""

from __future__ import annotations

from dataclasses import dataclass

from automation.core import assignment
from automation.core.assignment import Assignment
from automation.core.journeys import Journey, SendStep


@dataclass(frozen=True)
class Placement:
    """The template of one send for one customer, its arm (None outside experiments) and why."""

    template: str
    arm: str | None
    held_out: bool
    why: tuple[Assignment, ...] = ()

    @property
    def reason(self) -> str | None:
        """Why a held-out delivery is not sent, as the ledger records it."""
        if not self.held_out:
            return None
        if self.arm == assignment.GLOBAL_CONTROL:
            return "held out: the global control group gets no marketing message"
        return "held out: the journey's holdout gets no message (measured against the others)"

    def explain(self) -> str:
        """One line for `journeys explain`: the arm and the buckets that chose it."""
        if self.arm is None:
            return "no experiment: every entrant gets this message"
        reasons = "; ".join(f"{a.arm}: {a.why()}" for a in self.why)
        held = ", held out (no message, measured)" if self.held_out else ""
        return f"arm {self.arm}{held}" + (f" ({reasons})" if reasons else "")


def withheld(journey: Journey, customer_id: str, global_holdout_pct: float) -> Assignment | None:
    """Why the customer's messages of `journey` are held back (the global control group first), if so."""
    if journey.transactional:
        return None
    control = assignment.global_control(customer_id, global_holdout_pct)
    return control or assignment.held_out(journey.id, customer_id, journey.holdout)


def place(
    journey: Journey, step_id: str, step: SendStep, customer_id: str, global_holdout_pct: float
) -> Placement:
    """The placement of `customer_id` at send step `step_id` of `journey`."""
    template, variant = step.assign(journey.id, step_id, customer_id)
    chosen = (variant,) if variant else ()
    held = withheld(journey, customer_id, global_holdout_pct)
    if held is not None:
        return Placement(template, held.arm, True, (held, *chosen))
    if variant is not None:
        return Placement(template, variant.arm, False, chosen)
    if journey.holdout:
        return Placement(template, assignment.TREATMENT, False)
    return Placement(template, None, False)


def template_now(journey: Journey, step_id: str, step: SendStep, customer_id: str, recorded: str) -> str:
    """The template to render for a delivery made with `recorded`: that one while the step still has it.

    A journey edited after the delivery was made renders the step's template as it is now
    (for variants, the customer's arm under the new weights).
    """
    if recorded in step.templates():
        return recorded
    return step.assign(journey.id, step_id, customer_id)[0]


@dataclass(frozen=True)
class Design:
    """One experiment of a journey: the step that assigns the arms, and the arms' weights (per cent).

    The first arm is the baseline: the holdout when the journey has one, else the first
    variant; for a `split` (`split` true: its arms are the paths, recorded in
    `split_decisions`), the first path.
    """

    step_id: str
    arms: tuple[tuple[str, float], ...]
    split: bool = False


def designs(journey: Journey) -> list[Design]:
    """The journey's experiments: one per send step with variants (or its holdout at the first send),
    then one per split step."""
    holdout = ((assignment.HOLDOUT, journey.holdout),) if journey.holdout else ()
    rest = 100 - journey.holdout
    out = []
    for sid, step in journey.send_steps():
        if step.variants:
            total = sum(v.weight for v in step.variants)
            out.append(Design(sid, (*holdout, *((v.id, rest * v.weight / total) for v in step.variants))))
    sends = journey.send_steps()
    if holdout and not out and sends:
        out.append(Design(sends[0][0], (*holdout, (assignment.TREATMENT, rest))))
    for sid, placed in journey.placed.items():
        if placed.step.split is not None:
            paths = placed.step.split.paths
            total = sum(p.weight for p in paths)
            out.append(Design(sid, tuple((p.id, 100 * p.weight / total) for p in paths), split=True))
    return out


def path_steps(journey: Journey, split_id: str) -> dict[str, str]:
    """Every step inside the paths of split `split_id` (nested ones too), with the path it is on."""
    placed = journey.placed
    out = {}
    for sid in placed:
        here = placed[sid]
        while here.parent is not None and here.parent != split_id:
            here = placed[here.parent]
        if here.parent == split_id and here.within is not None:
            out[sid] = here.within
    return out
