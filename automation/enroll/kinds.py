"""The registry of trigger kinds: every caller iterates or looks up this one table.

Adding a kind is one module beside these (a `TriggerKind` subclass and its
`KIND`), its line below, and its settings model in the journey schema.
"""

from __future__ import annotations

from typing import Any

from automation.core.journeys import Journey
from automation.enroll import (
    anniversary,
    event,
    inactivity,
    manual,
    points_expiring,
    tier_change,
    tier_will_downgrade,
)
from automation.enroll.kind import TriggerKind

KINDS: dict[str, TriggerKind[Any]] = {
    k.name: k
    for k in (
        event.KIND,
        anniversary.KIND,
        inactivity.KIND,
        tier_change.KIND,
        points_expiring.KIND,
        tier_will_downgrade.KIND,
        manual.KIND,
    )
}


def kind_of(journey: Journey) -> TriggerKind[Any]:
    """The kind of the journey's trigger."""
    return KINDS[journey.trigger.kind]


def template_variables(journey: Journey, context: dict[str, Any] | None) -> dict[str, Any]:
    """The variables the journey's trigger gives its templates, from an enrollment's context."""
    return kind_of(journey).template_variables(context or {})
