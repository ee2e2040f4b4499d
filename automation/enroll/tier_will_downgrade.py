"""Trigger kind `tier_will_downgrade`: a warning `within` before a tier review that would move one down.

The accounts whose next tier review falls within the window are read with their
lots; the pure `tiering.at_risk` judges whether the lots earned so far still
keep the tier at the review. The occurrence is the review instant less `within`
and its key the review's local day, so a customer is warned once per tier
period. Templates get `tier`, `downgrade_to`, `downgrade_on` and `keep_tier_by`
(the spend or points still needed by then; also `loyalty.keep_tier_by`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from automation.core import entry, planner
from automation.core.journeys import Journey, TierWillDowngradeTrigger
from automation.core.planner import Occurrence
from automation.core.programme import Programme, Tiers
from automation.core.tiering import TierState, at_risk
from automation.enroll import lookup
from automation.enroll.kind import Candidate, Found, Scope, TriggerKind
from automation.loyalty.accounts import lots_of
from automation.store.models import Customer, LoyaltyAccount

Review = tuple[str, TierState, str | None]


def _reviews(session: Session, after: dt.datetime, until: dt.datetime, ids: list[str] | None) -> list[Review]:
    """(customer, tier state, zone) of the accounts whose tier review falls in (after, until]."""
    query = (
        select(LoyaltyAccount, Customer.timezone)
        .join(Customer, Customer.id == LoyaltyAccount.customer_id)
        .where(LoyaltyAccount.tier_review_at > after, LoyaltyAccount.tier_review_at <= until)
    )
    if ids is not None:
        query = query.where(LoyaltyAccount.customer_id.in_(ids))
    return [
        (a.customer_id, TierState(a.tier, a.tier_since, a.tier_review_at), zone)
        for a, zone in session.execute(query).all()
    ]


def _warnings(
    session: Session, tiers: Tiers, reviews: list[Review], default_tz: str, within: dt.timedelta
) -> Iterable[Candidate]:
    """A candidate for each review that would move the customer down."""
    lots = lots_of(session, [cid for cid, _state, _zone in reviews])
    for cid, state, zone in reviews:
        risk = at_risk(tiers, state, lots[cid])
        if risk is None or state.review_at is None:
            continue
        day = state.review_at.astimezone(planner.zone(zone, default_tz)).date()
        lower, short = risk
        context = {
            "tier": state.tier,
            "downgrade_to": lower,
            "downgrade_on": day.isoformat(),
            "keep_tier_by": short,
        }
        yield Candidate(cid, day.isoformat(), state.review_at - within, context)


class TierWillDowngradeKind(TriggerKind[TierWillDowngradeTrigger]):
    name = "tier_will_downgrade"
    model = TierWillDowngradeTrigger
    defaults: ClassVar[dict[str, Any]] = {
        "tier": None,
        "downgrade_to": None,
        "downgrade_on": None,
        "keep_tier_by": 0,
    }

    def lacking(self, programme: Programme | None) -> str | None:
        tiers = programme.tiers if programme is not None else None
        if tiers is not None and tiers.downgrade.at == "tier_anniversary":
            return None
        return (
            "tiers that are reviewed on their anniversary "
            "(`tiers.downgrade.at: tier_anniversary` in loyalty.yaml)"
        )

    def candidates(
        self, session: Session, journey: Journey, now: dt.datetime, scope: Scope
    ) -> Iterable[Candidate]:
        trig = self.settings(journey)
        if scope.tiers is None:
            return []
        start = entry.lookback_start(now, trig.lookback)
        reviews = _reviews(session, start + trig.within, now + trig.within, None)
        due = list(_warnings(session, scope.tiers, reviews, scope.default_tz, trig.within))
        audience = lookup.members(session, journey, {c.customer_id for c in due})
        return [c for c in due if c.customer_id in audience]

    def latest(
        self, session: Session, journey: Journey, customer: Customer, now: dt.datetime, scope: Scope
    ) -> Found:
        trig = self.settings(journey)
        if scope.tiers is None:
            return Found(None, "trigger not met: loyalty.yaml defines no tiers")
        reviews = _reviews(session, now, dt.datetime.max.replace(tzinfo=dt.UTC), [customer.id])
        if not reviews:
            return Found(None, "trigger not met: no tier review is scheduled")
        due = list(_warnings(session, scope.tiers, reviews, scope.default_tz, trig.within))
        review_at = reviews[0][1].review_at
        if not due:
            return Found(None, f"trigger not met: the tier is kept at its review on {review_at:%Y-%m-%d}")
        if due[0].occurred_at > now:
            return Found(None, f"trigger not met: the warning is due at {due[0].occurred_at.isoformat()}")
        return Found(Occurrence(due[0].raw_key, due[0].occurred_at, due[0].context))

    def preview_context(
        self, session: Session, journey: Journey, customer: Customer, now: dt.datetime, scope: Scope
    ) -> dict[str, Any]:
        """The warning of the next review that would move the customer down, due yet or not."""
        trig = self.settings(journey)
        if scope.tiers is not None:
            reviews = _reviews(session, now, dt.datetime.max.replace(tzinfo=dt.UTC), [customer.id])
            for found in _warnings(session, scope.tiers, reviews, scope.default_tz, trig.within):
                return found.context
        return super().preview_context(session, journey, customer, now, scope)


KIND = TierWillDowngradeKind()
