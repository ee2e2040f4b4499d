"""The dashboard over HTTP (Starlette's test client on the real app and PostgreSQL).

Every route's authorisation is read from the route table itself
(`Dashboard.specs()`), so a route added later is covered without a new test.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from automation.campaigns.campaign import CampaignError, parse_filter_text
from automation.config import Settings, load_settings
from automation.store.models import AuditEntry, Suppression
from automation.web.app import create_app
from automation.web.dashboard import accounts
from automation.web.dashboard.accounts import Role
from automation.web.dashboard.app import Dashboard
from automation.web.dashboard.timing import READ_PAGES, time_page
from tests.harness import Flow, identify, utc

NOW = utc("2026-11-22T12:00:00Z")
EDITOR = ("ed@example.com", "editor-password-1")
VIEWER = ("vi@example.com", "viewer-password-1")
SAMPLE_PATHS = {
    "journey_id": "seasonal_offer",
    "campaign_id": "c-1",
    "customer_id": "c1",
}


class Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def users(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        accounts.add(s, EDITOR[0], Role.EDITOR, EDITOR[1], NOW)
        accounts.add(s, VIEWER[0], Role.VIEWER, VIEWER[1], NOW)


def client_for(
    settings: Settings, sessions: sessionmaker[Session], clock: Clock, base_url: str = "https://testserver"
) -> TestClient:
    return TestClient(create_app(settings, sessions, clock), base_url=base_url)


@pytest.fixture
def client(
    settings: Settings, sessions: sessionmaker[Session], clock: Clock, users: None
) -> Iterator[TestClient]:
    with client_for(settings, sessions, clock) as c:
        yield c


def submit_login(client: TestClient, who: tuple[str, str], query: str = "") -> httpx.Response:
    """Fill and post the sign-in form (with the nonce its page gave)."""
    page = client.get("/app/login" + query)
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce
    return client.post(
        "/app/login" + query,
        data={"email": who[0], "password": who[1], "nonce": nonce[1]},
        follow_redirects=False,
    )


def sign_in(client: TestClient, who: tuple[str, str]) -> str:
    """Sign in through the form; returns the page's CSRF token."""
    done = submit_login(client, who)
    assert done.status_code == 303, done.text
    home = client.get("/app/", headers={"accept": "text/html"})
    token = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
    assert token
    return token[1]


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PATHS[m[1]], path)


def routes(settings: Settings, sessions: sessionmaker[Session]) -> list[tuple[str, str, Role]]:
    table = Dashboard(settings, sessions, lambda: NOW).specs()
    return [
        ("/app" + concrete(s.path).rstrip("/") + ("/" if s.path == "/" else ""), m, s.role)
        for s in table
        for m in s.methods
    ]


def test_every_route_without_a_session_redirects_a_page_to_sign_in_and_refuses_the_rest_with_401(
    client: TestClient, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    table = routes(settings, sessions)
    assert len(table) >= 18
    for path, method, _ in table:
        if method == "GET":
            page = client.get(path, headers={"accept": "text/html"}, follow_redirects=False)
            assert page.status_code == 303, path
            assert page.headers["location"] == f"/app/login?next={quote(path)}"
            api = client.get(path, follow_redirects=False)
            assert (api.status_code, api.json()) == (401, {"error": "sign in required"}), path
        else:
            post = client.post(path, data={}, follow_redirects=False)
            assert (post.status_code, post.json()) == (401, {"error": "sign in required"}), path


def test_a_viewer_gets_403_on_every_editor_route_and_200_on_the_pages(
    client: TestClient, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    csrf = sign_in(client, VIEWER)
    table = routes(settings, sessions)
    editor_routes = [(p, m) for p, m, role in table if role is Role.EDITOR]
    assert {p for p, _ in editor_routes} >= {
        "/app/campaigns/launch",
        "/app/campaigns/c-1/cancel",
        "/app/suppressions/add",
    }
    for path, method in editor_routes:
        answer = client.request(method, path, data={"csrf_token": csrf} if method == "POST" else None)
        assert (answer.status_code, answer.json()) == (403, {"error": "editors only: your role is viewer"}), (
            path
        )
    for path, method, role in table:
        if role is Role.VIEWER and method == "GET" and "{" not in path:
            page = client.get(path, headers={"accept": "text/html"})
            assert page.status_code in (200, 404), path
            assert "default-src 'none'" in page.headers["content-security-policy"]
            assert page.headers["x-frame-options"] == "DENY"


def test_root_redirects_to_the_dashboard(client: TestClient) -> None:
    assert client.get("/", follow_redirects=False).headers["location"] == "/app/"


def test_the_session_cookie_is_httponly_lax_and_secure_behind_https_and_expires_after_the_set_hours(
    env: dict[str, str], sessions: sessionmaker[Session], users: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOMATION_PUBLIC_URL", "https://marketing.example.com")
    monkeypatch.setenv("AUTOMATION_SESSION_HOURS", "2")
    clock = Clock(NOW)
    with client_for(load_settings(), sessions, clock) as c:
        done = submit_login(c, EDITOR)
        assert done.status_code == 303, done.text
        cookie = next(v for v in done.headers.get_list("set-cookie") if v.startswith("automation_session="))
        for flag in ("HttpOnly", "SameSite=lax", "Secure", "Path=/app", "Max-Age=7200"):
            assert flag in cookie
        session = re.search(r"automation_session=([^;]+)", cookie)
        assert session
        headers = {"cookie": f"automation_session={session[1]}"}
        c.cookies.clear()
        assert c.get("/app/journeys", headers=headers).status_code == 200
        clock.at = NOW + dt.timedelta(hours=2, seconds=1)
        assert c.get("/app/journeys", headers=headers).status_code == 401


def test_sign_out_ends_the_session_on_the_server(client: TestClient) -> None:
    csrf = sign_in(client, EDITOR)
    cookie = client.cookies.get("automation_session")
    assert client.post("/app/logout", data={"csrf_token": "wrong"}).status_code == 403
    assert client.post("/app/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert client.get("/app/journeys", headers={"cookie": f"automation_session={cookie}"}).status_code == 401


def test_sign_in_refuses_a_form_without_its_nonce_and_never_redirects_off_site(client: TestClient) -> None:
    refused = client.post("/app/login", data={"email": EDITOR[0], "password": EDITOR[1]})
    assert refused.status_code == 403
    assert "expired" in refused.text
    done = submit_login(client, EDITOR, "?next=https://evil.example/")
    assert done.headers["location"] == "/app/"


def test_lockout_after_five_failures_in_fifteen_minutes_lasts_fifteen_minutes(
    sessions: sessionmaker[Session], users: None
) -> None:
    def attempt(password: str, at: dt.datetime) -> accounts.SignIn:
        with sessions.begin() as s:
            return accounts.sign_in(s, EDITOR[0], password, at).outcome

    assert attempt("wrong", NOW) is accounts.SignIn.WRONG
    for minute in range(1, 4):
        assert attempt("wrong", NOW + dt.timedelta(minutes=minute)) is accounts.SignIn.WRONG
    fifth = NOW + dt.timedelta(minutes=14)
    assert attempt("wrong", fifth) is accounts.SignIn.LOCKED
    assert attempt(EDITOR[1], fifth + dt.timedelta(minutes=14, seconds=59)) is accounts.SignIn.LOCKED
    assert attempt(EDITOR[1], fifth + dt.timedelta(minutes=15)) is accounts.SignIn.OK


def test_failures_spread_over_more_than_fifteen_minutes_do_not_lock(
    sessions: sessionmaker[Session], users: None
) -> None:
    with sessions.begin() as s:
        for n in range(8):
            at = NOW + dt.timedelta(minutes=4 * n)
            assert accounts.sign_in(s, EDITOR[0], "wrong", at).outcome is accounts.SignIn.WRONG
        assert (
            accounts.sign_in(s, EDITOR[0], EDITOR[1], NOW + dt.timedelta(hours=1)).outcome
            is accounts.SignIn.OK
        )


def test_an_unknown_account_is_just_a_wrong_password(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        assert (
            accounts.sign_in(s, "nobody@example.com", "whatever-it-is", NOW).outcome is accounts.SignIn.WRONG
        )


def test_the_filter_check_answers_with_the_cli_message_and_the_audience(
    client: TestClient, settings: Settings
) -> None:
    flow = Flow(settings)
    try:
        flow.ingest(
            [
                identify(
                    f"c{n}",
                    "2026-11-01T00:00:00Z",
                    email=f"c{n}@example.com",
                    email_opt_in=True,
                    tier="gold" if n < 2 else "silver",
                )
                for n in range(4)
            ]
        )
    finally:
        flow.close()
    csrf = sign_in(client, EDITOR)
    htmx = {"hx-request": "true", "x-csrf-token": csrf}
    for bad_filter in ("{trait: tier, eq: gold, lt: 3}", "{trait: tier, eq: gold"):
        with pytest.raises(CampaignError) as cli_message:
            parse_filter_text(bad_filter, "filter")
        bad = client.post(
            "/app/campaigns/check", data={"journey": "seasonal_offer", "where": bad_filter}, headers=htmx
        )
        assert str(escape(str(cli_message.value))) in bad.text
    good = client.post(
        "/app/campaigns/check",
        data={"journey": "seasonal_offer", "where": "{trait: tier, eq: gold}"},
        headers=htmx,
    )
    assert "<strong>2</strong> customers would enter" in good.text
    assert "c***@example.com" in good.text and "c0@example.com" not in good.text
    assert "<html" not in good.text
    sample = client.get("/app/campaigns/sample?journey=seasonal_offer&customer=c0")
    assert sample.status_code == 200
    assert "sandbox" in sample.headers["content-security-policy"]
    changed = client.post(
        "/app/campaigns/launch",
        data={
            "journey": "seasonal_offer",
            "where": "{trait: tier, eq: gold}",
            "expected": "3",
            "csrf_token": csrf,
        },
    )
    assert changed.status_code == 409
    assert "the audience changed from 3 to 2 customers" in changed.text


def test_an_import_lands_the_good_lines_reports_the_bad_ones_and_is_audited(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    csrf = sign_in(client, EDITOR)
    body = "address,reason\nA@Example.com,complaint\nnot-an-address,\n+15551234567,\n"
    answer = client.post(
        "/app/suppressions/import",
        data={"csrf_token": csrf, "reason": "import"},
        files={"file": ("list.csv", body.encode(), "text/csv")},
    )
    assert answer.status_code == 200
    assert "read 3 addresses: suppressed 2 new, 0 already suppressed, rejected 1" in answer.text
    assert "list.csv:3: &#39;not-an-address&#39; is not a phone number in E.164 form" in answer.text
    with sessions() as s:
        assert sorted(s.scalars(select(Suppression.address))) == ["+15551234567", "a@example.com"]
        entry = s.scalar(select(AuditEntry))
        assert entry is not None and (entry.actor, entry.action, entry.target_id) == (
            EDITOR[0],
            "imported",
            "list.csv",
        )
    removed = client.post(
        "/app/suppressions/remove",
        data={"csrf_token": csrf, "channel": "email", "address": "a@example.com"},
        follow_redirects=False,
    )
    assert removed.status_code == 303
    assert "removed+email+a%2A%2A%2A%40example.com" in removed.headers["location"]


def test_every_read_page_can_be_timed_without_http(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    dashboard = Dashboard(settings, sessions, lambda: NOW)
    for name in READ_PAGES:
        timed = time_page(dashboard, name, path=SAMPLE_PATHS, now=NOW)
        assert timed.seconds > 0 and timed.html_bytes > 500, name
        assert timed.status in (200, 404), name


def test_the_session_cookie_is_not_secure_when_the_public_url_is_plain_http(
    env: dict[str, str], sessions: sessionmaker[Session], users: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOMATION_PUBLIC_URL", "http://intranet.example.com")
    with client_for(load_settings(), sessions, Clock(NOW), "http://testserver") as c:
        done = submit_login(c, EDITOR)
        cookie = next(v for v in done.headers.get_list("set-cookie") if v.startswith("automation_session="))
        assert "HttpOnly" in cookie and "Secure" not in cookie
