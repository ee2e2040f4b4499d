"""The dashboard in a real Chromium against a real `automation web` process on PostgreSQL.

The web process reads the wall clock, so the data here is laid out around the
current instant (`wall_now`), and customers get a fixed-offset zone chosen so
that it is night (quiet hours) or midday for them right now.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from automation.campaigns import queued
from automation.campaigns.campaign import CampaignError, parse_filter_text
from automation.config import Settings
from automation.core import feedback
from automation.insight.refresh import refresh
from automation.loyalty import coupons
from automation.web import ledger
from tests.browser.conftest import (
    EDITOR,
    VIEWER,
    Web,
    axe_violations,
    csp_errors,
    screenshot,
    sign_in,
    wall_now,
    zone_at_local_hour,
)
from tests.harness import Flow, identify, track
from tests.standins import SendGridStandIn

GOLD = ["gold-1", "gold-2", "gold-3"]


def _iso(at: dt.datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@pytest.fixture
def flow(settings: Settings) -> Iterator[Flow]:
    f = Flow(settings)
    yield f
    f.close()


def populate(flow: Flow, now: dt.datetime) -> None:
    """Gold and silver customers at midday; `night-owl` ordered two hours ago and it is 23:00 for them."""
    midday, night = zone_at_local_hour(now, 12), zone_at_local_hour(now, 23)
    earlier = _iso(now - dt.timedelta(days=2))
    records = [
        identify(
            cid,
            earlier,
            email=f"{cid}@example.com",
            tier=tier,
            timezone=midday,
            email_opt_in=consent,
            first_name=cid.split("-")[0].title(),
        )
        for cid, tier, consent in (
            *((c, "gold", True) for c in GOLD),
            ("silver-1", "silver", True),
            ("gold-quiet", "gold", False),
        )
    ]
    records.append(
        identify(
            "night-owl",
            earlier,
            email="owl@example.com",
            tier="bronze",
            timezone=night,
            email_opt_in=True,
            first_name="Olive",
        )
    )
    records.append(track("night-owl", "order_placed", _iso(now - dt.timedelta(hours=2)), "o-owl", total=18.5))
    records.append(
        track("silver-1", "order_placed", _iso(now - dt.timedelta(days=1, hours=3)), "o-s1", total=42)
    )
    assert flow.ingest(records, now=_iso(now)).rejected == []
    flow.run(_iso(now - dt.timedelta(days=1)))
    flow.run(_iso(now))


def history(flow: Flow, now: dt.datetime, days: int = 14) -> None:
    """A fortnight of orders thanked by email, the provider reporting deliveries, opens and clicks."""
    midday = zone_at_local_hour(now, 12)
    start = _iso(now - dt.timedelta(days=days + 1))
    buyers = [f"buyer-{n:02d}" for n in range(12)]
    records = [
        identify(b, start, email=f"{b}@example.com", timezone=midday, email_opt_in=True, first_name="Sam")
        for b in buyers
    ]
    for day in range(days, 0, -1):
        for n, b in enumerate(buyers):
            if (n + day) % 3 == 0:
                at = now - dt.timedelta(days=day, hours=2)
                records.append(track(b, "order_placed", _iso(at), f"o-{b}-{day}", total=10 + n))
    assert flow.ingest(records, now=start).rejected == []
    for day in range(days, 0, -1):
        flow.run(_iso(now - dt.timedelta(days=day)))
    with flow.runtime.sessions.begin() as s:
        items = []
        for d in flow.deliveries(status="sent"):
            stamp = d.due_at.timestamp()
            for kind, every in (("delivered", 1), ("open", 2), ("click", 5)):
                if d.id % every == 0:
                    raw = {
                        "event": kind,
                        "sg_event_id": f"{kind}-{d.id}",
                        "timestamp": stamp + 60,
                        "delivery_id": str(d.id),
                    }
                    items.append(feedback.sendgrid_event(raw, 0))
        ledger.record(s, items, now)


def test_a_wrong_password_is_refused_and_five_lock_the_account_even_for_the_right_one(
    page: Page, web: Web
) -> None:
    email, password = EDITOR
    page.goto(web.url + "/")
    expect(page).to_have_url(web.url + "/app/login?next=/app/")
    for _ in range(4):
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("still-not-it")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("this account is locked until")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("locked")
    expect(page).to_have_url(f"{web.url}/app/login?next=/app/")

    sign_in(page, web, VIEWER)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "automation_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/app"
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(web.url + "/app/login")
    page.goto(web.url + "/app/journeys")
    expect(page).to_have_url(web.url + "/app/login?next=/app/journeys")


def test_a_post_without_the_csrf_token_is_refused(page: Page, web: Web) -> None:
    sign_in(page, web, EDITOR, "/app/suppressions")
    refused = page.request.post(web.url + "/app/suppressions/add", form={"address": "x@example.com"})
    assert refused.status == 403
    assert "CSRF" in refused.json()["error"]
    forged = page.request.post(
        web.url + "/app/suppressions/add", form={"address": "x@example.com", "csrf_token": "0" * 64}
    )
    assert forged.status == 403
    page.reload()
    expect(page.get_by_text("No suppressed address")).to_be_visible()

    page.get_by_label("Email address or E.164 phone number").fill("X@Example.com")
    page.get_by_role("button", name="Suppress").click()
    expect(page.get_by_role("status")).to_have_text("suppressed email x***@example.com")
    expect(page.locator("#sup-list")).to_contain_text("x@example.com")
    expect(page.locator("section", has_text="Changes by editors")).to_contain_text(EDITOR[0])


def test_a_viewer_cannot_launch_a_campaign(page: Page, web: Web) -> None:
    sign_in(page, web, VIEWER, "/app/campaigns")
    expect(page.get_by_role("heading", name="Campaigns")).to_be_visible()
    expect(page.get_by_role("link", name="New campaign")).to_have_count(0)
    page.goto(web.url + "/app/campaigns/new")
    expect(page.get_by_role("alert")).to_have_text("editors only: your role is viewer")
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert csrf
    launch = page.request.post(
        web.url + "/app/campaigns/launch",
        form={"journey": "seasonal_offer", "where": "", "expected": "0", "csrf_token": csrf},
    )
    assert launch.status == 403
    assert launch.json() == {"error": "editors only: your role is viewer"}


def test_an_editor_launches_a_campaign_from_the_form_and_exactly_its_audience_is_mailed(
    page: Page, web: Web, flow: Flow, sendgrid: SendGridStandIn
) -> None:
    now = wall_now()
    populate(flow, now)
    before = len(sendgrid.messages())
    sign_in(page, web, EDITOR, "/app/campaigns/new")
    page.get_by_label("Manual journey").select_option("seasonal_offer")  # newsletter comes first
    where = page.get_by_label("Filter (YAML")
    bad = "{trait: tier, eq: gold"
    with pytest.raises(CampaignError) as cli_message:
        parse_filter_text(bad, "filter")
    where.fill(bad)
    expect(page.locator("#filter-problem")).to_have_text(str(cli_message.value))
    where.fill("{trait: tier, eq: gold}")
    expect(page.locator("#audience")).to_have_text("3 customers would enter seasonal_offer.")
    expect(page.locator("#check table")).to_contain_text("g***@example.com")
    frame = page.frame_locator("iframe.sample")
    expect(frame.locator("body")).to_contain_text("Gold")
    page.get_by_label("Campaign id").fill("gold-winter")
    page.get_by_role("button", name="Review launch").click()
    expect(page.locator("#confirm-count")).to_have_text("3")
    page.get_by_role("button", name="Launch to 3 customers").click()
    expect(page).to_have_url(web.url + "/app/campaigns/gold-winter")
    expect(page.locator("section", has_text="Changes by editors")).to_contain_text(EDITOR[0])
    expect(page.locator("section", has_text="Changes by editors")).to_contain_text("launched")

    flow.run(_iso(wall_now() + dt.timedelta(seconds=1)))
    mailed = sorted(m["to"] for m in sendgrid.messages()[before:])
    assert mailed == sorted(f"{c}@example.com" for c in GOLD)
    page.reload()
    expect(page.locator("dl.facts")).to_contain_text("sent 3")


def test_the_customer_timeline_shows_a_quiet_hours_deferral_with_its_time(
    page: Page, web: Web, flow: Flow, tmp_path: Path
) -> None:
    now = wall_now()
    populate(flow, now)
    [deferred] = flow.deliveries(customer_id="night-owl")
    assert deferred.status == "deferred" and deferred.reason == "quiet hours"
    sign_in(page, web, VIEWER, "/app/customers")
    page.get_by_label("Customer id, email address or phone number").fill("night-owl")
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("heading", name="Customer night-owl")).to_be_visible()
    entry = page.locator("li.tl", has_text="deferred (quiet hours)")
    expect(entry).to_contain_text(f"email deferred (quiet hours) until {deferred.due_at:%Y-%m-%d %H:%M} UTC")
    expect(entry).to_contain_text("08:00 Etc/GMT")
    expect(page.locator("ol.timeline")).to_contain_text("entered post_purchase_thanks")
    expect(page.locator("ol.timeline")).to_contain_text("event order_placed")
    expect(page.locator("table", has_text="email")).to_contain_text("o***@example.com")
    expect(page.get_by_text("owl@example.com")).to_have_count(0)
    screenshot(page, "customer", tmp_path, readme=True)


def trends_and_warnings(flow: Flow, now: dt.datetime, days: int = 14) -> None:
    """A KPI snapshot a day (as the daily insight refresh takes), a low coupon pool, a campaign enrolling."""
    sessions = flow.runtime.sessions
    for day in range(days, -1, -1):
        refresh(sessions, flow.settings.order_event, now - dt.timedelta(days=day))
    with sessions.begin() as s:
        coupons.generate(s, "winter10", "W-######", 4, now, low_water=50)
        queued.request(
            s,
            flow.runtime.catalog,
            "seasonal_offer",
            now=now,
            launched_by=EDITOR[0],
            where=parse_filter_text("{trait: tier, eq: gold}", "filter"),
            campaign_id="gold-spring",
            confirmed=3,
        )


def test_every_page_passes_axe_and_the_csp_blocks_nothing(
    page: Page, web: Web, flow: Flow, tmp_path: Path
) -> None:
    now = wall_now()
    history(flow, now)
    populate(flow, now)
    trends_and_warnings(flow, now)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    sign_in(page, web, EDITOR)
    pages = {
        "overview": "/app/",
        "journeys": "/app/journeys",
        "journey": "/app/journeys/post_purchase_thanks",
        "campaigns": "/app/campaigns",
        "campaign_new": "/app/campaigns/new",
        "campaign": "/app/campaigns/gold-spring",
        "deliveries": "/app/deliveries",
        "customers": "/app/customers",
        "customer": "/app/customers/night-owl",
        "suppressions": "/app/suppressions",
    }
    for name, path in pages.items():
        page.goto(web.url + path)
        page.wait_for_load_state("networkidle")
        if name == "campaign_new":
            expect(page.frame_locator("iframe.sample").locator("body")).to_contain_text("Sam")
        assert axe_violations(page) == [], name
        screenshot(page, name, tmp_path, readme=name in ("overview", "journey"))
    expect(page.locator("h1")).to_have_text("Suppressions")
    page.goto(web.url + "/app/")
    expect(page.locator(".chart canvas").first).to_be_visible()
    expect(page.locator(".kpi-label", has_text="retention rate")).to_be_visible()
    expect(page.locator(".attention")).to_contain_text("Coupon pool winter10 is running low: 4 codes left")
    page.goto(web.url + "/app/journeys/post_purchase_thanks")
    expect(page.locator(".experiment .verdict")).to_have_text("verdict: not enough data")
    assert csp_errors(console) == []


def test_the_pages_work_without_javascript_and_by_keyboard(browser: Browser, web: Web, flow: Flow) -> None:
    populate(flow, wall_now())
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, web, EDITOR)
        page.keyboard.press("Tab")
        expect(page.locator(":focus")).to_have_text("Skip to content")
        page.get_by_text("Numbers").first.click()
        expect(page.locator("table").first).to_contain_text("Day")
        page.goto(web.url + "/app/deliveries")
        page.get_by_label("Status").select_option("deferred")
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(r"status=deferred"))
        expect(page.locator("#ledger tbody tr")).to_have_count(1)
        expect(page.locator("#ledger")).to_contain_text("night-owl")
        page.goto(web.url + "/app/campaigns/new")
        page.get_by_label("Manual journey").select_option("seasonal_offer")
        page.get_by_label("Filter (YAML").fill("{trait: tier, eq: gold}")
        page.get_by_role("button", name="Check").click()
        expect(page.locator("#audience")).to_have_text("3 customers would enter seasonal_offer.")
    finally:
        context.close()
