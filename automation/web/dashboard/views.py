"""The read-only pages: overview, journeys, campaigns, deliveries, customers, suppressions.

Each view is a function of an `Ask` returning the template and its context;
every list is paged and every query runs on an index (see the module of each).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from automation.config import Settings
from automation.core.filters import INSIGHT_FACTS
from automation.core.records import WELL_KNOWN
from automation.core.statuses import EnrollmentState
from automation.insight import experiments
from automation.loyalty import operations
from automation.store import tallies
from automation.store.models import Campaign, Customer, Enrollment
from automation.web.dashboard import audit, campaign_list, deliveries, journey_stats, overview, timeline
from automation.web.dashboard.catalog_view import CatalogView
from automation.web.dashboard.flow import flow
from automation.web.dashboard.masking import mask
from automation.web.dashboard.pages import Ask, Shown
from automation.web.dashboard.paging import decode
from automation.web.dashboard.suppression_list import search

ADDRESS_TRAITS = ("email", "phone")


@dataclass
class Views:
    settings: Settings
    sessions: sessionmaker[Session]
    catalogs: CatalogView

    def _fold(self) -> None:
        """Fold what the ledger's tallies appended since the last fold: the pages that sum them stay short."""
        with self.sessions.begin() as s:
            tallies.compact(s)

    def overview(self, ask: Ask) -> Shown:
        self._fold()
        catalog, problems = self.catalogs.current()
        data = overview.overview(self.sessions, catalog, ask.now, problems)
        return Shown("overview.html", {"data": data, "page": "overview"})

    def journeys(self, ask: Ask) -> Shown:
        self._fold()
        catalog, problems = self.catalogs.current()
        rows = journey_stats.journey_rows(self.sessions, catalog)
        return Shown("journeys.html", {"rows": rows, "problems": problems, "page": "journeys"})

    def journey(self, ask: Ask) -> Shown:
        self._fold()
        catalog, _ = self.catalogs.current()
        journey_id = ask.path["journey_id"]
        journey = catalog.get(journey_id) if catalog else None
        if catalog is None or journey is None:
            return Shown("error.html", {"status": 404, "reason": f"no journey {journey_id!r}"}, 404)
        source = catalog.sources[journey_id]
        with self.sessions() as s:
            counts = journey_stats.step_counts(s, journey_id)
        return Shown(
            "journey.html",
            {
                "journey": journey,
                "flow": flow(journey),
                "counts": counts,
                "funnel": journey_stats.funnel(self.sessions, catalog, journey_id),
                "experiments": experiments.results(self.sessions, catalog, journey),
                "yaml": source.read_text(encoding="utf-8"),
                "source": source.name,
                "page": "journeys",
            },
        )

    def campaigns(self, ask: Ask) -> Shown:
        with self.sessions() as s:
            page = campaign_list.campaigns(s, ask.q("after") or None)
        return Shown("campaigns.html", {"campaigns": page, "page": "campaigns"})

    def campaign(self, ask: Ask) -> Shown:
        campaign_id = ask.path["campaign_id"]
        with self.sessions() as s:
            row = s.get(Campaign, campaign_id)
            if row is None:
                return Shown("error.html", {"status": 404, "reason": f"no campaign {campaign_id!r}"}, 404)
            counts = campaign_list.messages_by_status(s, campaign_id)
            actions = audit.for_target(s, "campaign", campaign_id)
        return Shown(
            "campaign.html", {"campaign": row, "counts": counts, "actions": actions, "page": "campaigns"}
        )

    def deliveries(self, ask: Ask) -> Shown:
        f = deliveries.parse_filter(ask.query)
        with self.sessions() as s:
            page = deliveries.ledger(s, f, ask.q("after") or None)
        context = {
            "filter": f,
            "rows": page,
            "statuses": deliveries.STATUSES,
            "channels": deliveries.CHANNELS,
            "page": "deliveries",
        }
        return Shown("_ledger.html" if ask.partial else "deliveries.html", context)

    def customers(self, ask: Ask) -> Shown:
        q = ask.q("q")
        found: list[Customer] = []
        if q:
            with self.sessions() as s:
                found = list(
                    s.scalars(
                        select(Customer)
                        .where(or_(Customer.id == q, Customer.email == q.lower(), Customer.phone == q))
                        .limit(20)
                    )
                )
            if len(found) == 1:
                return self.customer(Ask(ask.user, ask.now, path={"customer_id": found[0].id}))
        return Shown("customers.html", {"q": q, "found": found, "page": "customers"})

    def customer(self, ask: Ask) -> Shown:
        customer_id = ask.path["customer_id"]
        full = ask.user.is_editor
        before = decode(ask.q("before"))
        catalog, _ = self.catalogs.current()
        programme = catalog.programme if catalog else None
        with self.sessions() as s:
            c = s.get(Customer, customer_id)
            if c is None:
                return Shown("error.html", {"status": 404, "reason": f"no customer {customer_id!r}"}, 404)
            has_points = programme is not None and programme.points is not None
            loyalty = operations.summary(s, programme, c.id, ask.now) if has_points else None
            story = timeline.timeline(
                s,
                c,
                before=before.at if before else None,
                default_tz=self.settings.default_timezone,
                full=full,
            )
            active = list(
                s.scalars(
                    select(Enrollment)
                    .where(Enrollment.customer_id == c.id, Enrollment.state == EnrollmentState.ACTIVE)
                    .order_by(Enrollment.entered_at.desc())
                    .limit(50)
                )
            )
        return Shown(
            "customer.html",
            {
                "customer": c,
                "traits": _traits(c, full),
                "facts": _facts(c),
                "predictions": _predictions(c),
                "loyalty": loyalty,
                "active": active,
                "timeline": story,
                "page": "customers",
            },
        )

    def suppressions(self, ask: Ask) -> Shown:
        with self.sessions() as s:
            page = search(s, ask.q("q") or None, ask.q("after") or None)
            actions = audit.for_target(s, "suppression")
        report = {"done": ask.q("done"), "problems": []} if ask.q("done") else None
        context = {
            "q": ask.q("q"),
            "rows": page,
            "actions": actions,
            "page": "suppressions",
            "report": report,
        }
        return Shown("_suppressions.html" if ask.partial else "suppressions.html", context)


def _traits(c: Customer, full: bool) -> list[tuple[str, Any]]:
    """Well-known traits then custom ones; a viewer sees addresses masked."""
    out: list[tuple[str, Any]] = []
    for name in WELL_KNOWN:
        value = getattr(c, name)
        out.append((name, mask(value) if name in ADDRESS_TRAITS and value and not full else value))
    out.extend(sorted((c.traits or {}).items()))
    return out


def _predictions(c: Customer) -> list[tuple[str, Any]]:
    """The facts of the last `insight refresh`, none before it has scored this customer."""
    if c.insight_at is None and c.rfm_segment is None:
        return []
    return [*((name, getattr(c, name)) for name in INSIGHT_FACTS), ("scored at", c.insight_at)]


def _facts(c: Customer) -> list[tuple[str, Any]]:
    return [
        ("order_count", c.order_count or 0),
        ("lifetime_value", c.lifetime_value or Decimal(0)),
        ("last_order_at", c.last_order_at),
        ("first seen", c.created_at),
    ]
