"""What editors change: campaigns launched and cancelled, suppressions added, removed, imported.

Each action goes through the product's own API (`automation.campaigns.queued`
to launch, `campaign.cancel`, `automation.store.suppressions`) and is written
to the audit log in the same transaction as its effect where it has one. A
launch only records the campaign: the scheduler's ticks enroll its audience,
so the request returns at once whatever the audience's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from automation.campaigns import campaign as campaigns
from automation.campaigns import queued
from automation.config import Settings
from automation.core import addresses
from automation.errors import UserError
from automation.store import suppressions
from automation.store.models import Customer
from automation.web.dashboard import audit, campaign_form
from automation.web.dashboard.catalog_view import CatalogView
from automation.web.dashboard.masking import mask
from automation.web.dashboard.pages import Ask, Redirect, Shown
from automation.web.dashboard.views import Views

IMPORT_REASON = "import"


@dataclass
class Actions:
    settings: Settings
    sessions: sessionmaker[Session]
    catalogs: CatalogView
    views: Views

    # ------------------------------------------------------------ campaigns

    def _check(self, ask: Ask, values: dict[str, str]) -> campaign_form.Check:
        catalog, _ = self.catalogs.current()
        return campaign_form.check(
            self.sessions,
            catalog,
            values.get("journey", "").strip(),
            values.get("where", ""),
            values.get("campaign_id", "").strip(),
            now=ask.now,
            brand=self.settings.email_from_name,
        )

    def new_campaign(self, ask: Ask) -> Shown:
        catalog, _ = self.catalogs.current()
        journeys = campaign_form.manual_journeys(catalog)
        values = {
            "journey": ask.q("journey") or (journeys[0][0] if journeys else ""),
            "where": "",
            "campaign_id": "",
        }
        return Shown(
            "campaign_new.html",
            {"journeys": journeys, "values": values, "check": self._check(ask, values), "page": "campaigns"},
        )

    def check_campaign(self, ask: Ask) -> Shown:
        catalog, _ = self.catalogs.current()
        context = {
            "journeys": campaign_form.manual_journeys(catalog),
            "values": ask.form,
            "check": self._check(ask, ask.form),
            "page": "campaigns",
        }
        return Shown("_campaign_check.html" if ask.partial else "campaign_new.html", context)

    def confirm_campaign(self, ask: Ask) -> Shown:
        result = self._check(ask, ask.form)
        if not result.ok:
            catalog, _ = self.catalogs.current()
            context = {
                "journeys": campaign_form.manual_journeys(catalog),
                "values": ask.form,
                "check": result,
                "page": "campaigns",
            }
            return Shown("campaign_new.html", context, 422)
        # The id is fixed here, so that submitting the confirmation twice launches one campaign.
        result.campaign_id = result.campaign_id or campaigns.new_campaign_id(result.journey_id, ask.now)
        return Shown("campaign_confirm.html", {"check": result, "page": "campaigns"})

    def launch_campaign(self, ask: Ask) -> Shown | Redirect:
        result = self._check(ask, ask.form)
        catalog, _ = self.catalogs.current()
        if not result.ok or catalog is None:
            return Shown("campaign_confirm.html", {"check": result, "page": "campaigns"}, 422)
        if ask.f("expected") != str(result.audience):
            result.problem = (
                f"the audience changed from {ask.f('expected') or '?'} to {result.audience} customers "
                "since you confirmed; confirm the new count"
            )
            return Shown("campaign_confirm.html", {"check": result, "page": "campaigns"}, 409)
        try:
            with self.sessions.begin() as s:
                campaign_id, recorded = queued.request(
                    s,
                    catalog,
                    result.journey_id,
                    now=ask.now,
                    launched_by=ask.user.email,
                    where=result.where,
                    campaign_id=result.campaign_id,
                    confirmed=result.audience,
                )
                if recorded:
                    audit.record(
                        s,
                        ask.user.email,
                        "launched",
                        ("campaign", campaign_id),
                        ask.now,
                        journey=result.journey_id,
                        where=result.where_text.strip() or None,
                        audience=result.audience,
                    )
        except UserError as exc:
            result.problem = str(exc)
            return Shown("campaign_confirm.html", {"check": result, "page": "campaigns"}, 409)
        return Redirect(f"/app/campaigns/{quote(campaign_id, safe='')}")

    def cancel_campaign(self, ask: Ask) -> Shown | Redirect:
        campaign_id = ask.path["campaign_id"]
        try:
            result = campaigns.cancel(self.sessions, campaign_id, ask.now)
        except UserError as exc:
            return Shown("error.html", {"status": 404, "reason": str(exc)}, 404)
        with self.sessions.begin() as s:
            audit.record(
                s,
                ask.user.email,
                "cancelled",
                ("campaign", campaign_id),
                ask.now,
                enrollments=result.enrollments,
                messages=result.deliveries,
            )
        return Redirect(f"/app/campaigns/{quote(campaign_id, safe='')}")

    def sample_email(self, ask: Ask) -> Shown:
        """The first email of a manual journey for one customer, for the form's sandboxed frame."""
        catalog, _ = self.catalogs.current()
        journey = catalog.get(ask.q("journey")) if catalog else None
        with self.sessions() as s:
            customer = s.scalar(select(Customer).where(Customer.id == ask.q("customer")))
        if catalog is None or journey is None or customer is None or not journey.send_steps():
            return Shown("error.html", {"status": 404, "reason": "no such journey or customer"}, 404)
        campaign_id = ask.q("campaign_id") or campaigns.new_campaign_id(journey.id, ask.now)
        try:
            message = campaigns.render_first(
                catalog, journey, customer, campaign_id, self.settings.email_from_name
            )
        except campaigns.RenderError as exc:
            return Shown("error.html", {"status": 422, "reason": f"cannot render the sample: {exc}"}, 422)
        return Shown("sample.html", {"message": message})

    # ------------------------------------------------------------ suppressions

    def _back(self, ask: Ask, done: str) -> Redirect:
        """After a change, back to the list (the message names the address masked)."""
        query = {"q": ask.f("q")} if ask.f("q") else {}
        return Redirect("/app/suppressions?" + urlencode({**query, "done": done}))

    def _report(self, ask: Ask, problems: list[str], done: str | None = None) -> Shown:
        """The list again with what was wrong; nothing about it goes into a URL."""
        page = self.views.suppressions(Ask(ask.user, ask.now, query={"q": ask.f("q")}))
        page.context["report"] = {"done": done, "problems": problems}
        return Shown(page.template, page.context, 422 if problems and not done else 200)

    def add_suppression(self, ask: Ask) -> Shown | Redirect:
        address = ask.f("address")
        channel = ask.f("channel") or addresses.channel_of(address)
        try:
            key = addresses.normalize(channel, address)
        except addresses.AddressError as exc:
            return self._report(ask, [str(exc)])
        reason = ask.f("reason") or "manual"
        with self.sessions.begin() as s:
            added = suppressions.add(s, [suppressions.Entry(channel, key, reason)], "dashboard", ask.now)
            if added:
                audit.record(
                    s,
                    ask.user.email,
                    "suppressed",
                    ("suppression", f"{channel}:{key}"),
                    ask.now,
                    reason=reason,
                )
        done = (
            f"suppressed {channel} {mask(key)}" if added else f"{channel} {mask(key)} was already suppressed"
        )
        return self._back(ask, done=done)

    def remove_suppression(self, ask: Ask) -> Shown | Redirect:
        channel = ask.f("channel")
        try:
            key = addresses.normalize(channel, ask.f("address"))
        except addresses.AddressError as exc:
            return self._report(ask, [str(exc)])
        with self.sessions.begin() as s:
            removed = suppressions.remove(s, channel, key)
            if removed:
                audit.record(s, ask.user.email, "unsuppressed", ("suppression", f"{channel}:{key}"), ask.now)
        if not removed:
            return self._report(ask, [f"{channel} {mask(key)} is not suppressed"])
        return self._back(ask, done=f"removed {channel} {mask(key)}")

    def import_suppressions(self, ask: Ask) -> Shown:
        upload = ask.files.get("file")
        if upload is None or not upload.content:
            return self._report(ask, ["choose a file to import"])
        lines = upload.content.decode("utf-8", errors="replace").splitlines()
        entries, problems = suppressions.parse_import(lines, ask.f("reason") or IMPORT_REASON)
        with self.sessions.begin() as s:
            added = suppressions.add(s, entries, "import", ask.now)
            audit.record(
                s,
                ask.user.email,
                "imported",
                ("suppression", upload.filename[:300] or "upload"),
                ask.now,
                added=added,
                rejected=len(problems),
            )
        summary = (
            f"read {len(entries) + len(problems)} addresses: suppressed {added} new, "
            f"{len(entries) - added} already suppressed, rejected {len(problems)}"
        )
        name = upload.filename or "upload"
        return self._report(ask, [f"{name}:{p}" for p in problems], done=summary)
