"""The dashboard's HTTP side: routes under `/app/`, sign-in, the guard every route goes through.

The guard resolves the session, then applies the route's rule: no session is a
303 to the sign-in page for a page (401 with a JSON reason for anything else),
a viewer on an editor route is a 403, a POST without the session's CSRF token
is a 403. Every answer carries a Content-Security-Policy allowing only the
dashboard's own scripts, styles and frames.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from automation.config import Settings
from automation.web.dashboard import accounts, template_filters
from automation.web.dashboard.accounts import Role, SignIn
from automation.web.dashboard.actions import Actions
from automation.web.dashboard.auth import LOGIN_COOKIE, SESSION_COOKIE, Sessions, Signed
from automation.web.dashboard.catalog_view import CatalogView
from automation.web.dashboard.pages import Ask, Redirect, Shown, Upload
from automation.web.dashboard.pages import Route as Spec
from automation.web.dashboard.views import Views

log = logging.getLogger("automation.web.dashboard")

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; frame-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# The sample email is the sender's HTML: no script, its inline styles, nothing fetched, a sandbox.
SAMPLE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox"
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
Clock = Callable[[], dt.datetime]


def _headers(response: Response, csp: str = CSP) -> Response:
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    if "frame-ancestors 'none'" in csp:
        response.headers["X-Frame-Options"] = "DENY"
    return response


def _wants_html(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def _safe_next(target: str | None) -> str:
    """Only a path inside the dashboard, never another site."""
    if not target:
        return "/app/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not parsed.path.startswith("/app/") or target.startswith("//"):
        return "/app/"
    return target


class Dashboard:
    """The dashboard's routes and what they share."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], clock: Clock) -> None:
        self.settings = settings
        self.db = sessions
        self.clock = clock
        self.auth = Sessions(settings)
        self.catalogs = CatalogView(settings.journeys_dir, settings.templates_dir)
        self.views = Views(settings, sessions, self.catalogs)
        self.actions = Actions(settings, sessions, self.catalogs, self.views)
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        template_filters.install(self.env)

    def specs(self) -> list[Spec]:
        """Every signed-in route with its role: the table the guard and the tests read."""
        v, a, editor = self.views, self.actions, Role.EDITOR
        return [
            Spec("/", v.overview, name="overview"),
            Spec("/journeys", v.journeys, name="journeys"),
            Spec("/journeys/{journey_id}", v.journey, name="journey"),
            Spec("/campaigns", v.campaigns, name="campaigns"),
            Spec("/campaigns/new", a.new_campaign, role=editor, name="campaign_new"),
            Spec("/campaigns/check", a.check_campaign, ("POST",), editor, "campaign_check"),
            Spec("/campaigns/confirm", a.confirm_campaign, ("POST",), editor, "campaign_confirm"),
            Spec("/campaigns/launch", a.launch_campaign, ("POST",), editor, "campaign_launch"),
            Spec("/campaigns/sample", a.sample_email, role=editor, name="campaign_sample"),
            Spec("/campaigns/{campaign_id}", v.campaign, name="campaign"),
            Spec("/campaigns/{campaign_id}/cancel", a.cancel_campaign, ("POST",), editor, "campaign_cancel"),
            Spec("/deliveries", v.deliveries, name="deliveries"),
            Spec("/customers", v.customers, name="customers"),
            Spec("/customers/{customer_id}", v.customer, name="customer"),
            Spec("/suppressions", v.suppressions, name="suppressions"),
            Spec("/suppressions/add", a.add_suppression, ("POST",), editor, "suppression_add"),
            Spec("/suppressions/remove", a.remove_suppression, ("POST",), editor, "suppression_remove"),
            Spec("/suppressions/import", a.import_suppressions, ("POST",), editor, "suppression_import"),
        ]

    def routes(self) -> list[BaseRoute]:
        app_routes: list[BaseRoute] = [
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]
        app_routes += [Route(s.path, self._guarded(s), methods=list(s.methods)) for s in self.specs()]
        return [
            Route("/", lambda _r: RedirectResponse("/app/", status_code=307), methods=["GET"]),
            Route("/app", lambda _r: RedirectResponse("/app/", status_code=307), methods=["GET"]),
            Mount("/app", routes=app_routes),
        ]

    # ------------------------------------------------------------ rendering

    def render(self, shown: Shown, signed: Signed | None) -> str:
        """The page's HTML (the benchmark calls this through `timing`)."""
        context: dict[str, Any] = {
            "user": signed.user if signed else None,
            "csrf": self.auth.csrf(signed.token) if signed else "",
            **shown.context,
        }
        return self.env.get_template(shown.template).render(context)

    def _respond(self, shown: Shown | Redirect, signed: Signed | None) -> Response:
        if isinstance(shown, Redirect):
            return _headers(RedirectResponse(shown.url, status_code=303))
        csp = SAMPLE_CSP if shown.template == "sample.html" else CSP
        return _headers(HTMLResponse(self.render(shown, signed), status_code=shown.status), csp)

    def refuse(self, request: Request, status: int, reason: str, signed: Signed | None = None) -> Response:
        if _wants_html(request) or request.headers.get("hx-request"):
            shown = Shown("error.html", {"status": status, "reason": reason}, status)
            return self._respond(shown, signed)
        return _headers(JSONResponse({"error": reason}, status_code=status))

    # ------------------------------------------------------------ the guard

    def _resolve(self, cookie: str | None) -> Signed | None:
        with self.db.begin() as s:
            return self.auth.resolve(s, cookie, self.clock())

    def _guarded(self, spec: Spec) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            signed = await run_in_threadpool(self._resolve, request.cookies.get(SESSION_COOKIE))
            if signed is None:
                if _wants_html(request) and not request.headers.get("hx-request"):
                    target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
                    return _headers(RedirectResponse(f"/app/login?next={target}", status_code=303))
                return self.refuse(request, 401, "sign in required")
            if spec.role is Role.EDITOR and not signed.user.is_editor:
                return self.refuse(request, 403, "editors only: your role is viewer", signed)
            form: dict[str, str] = {}
            files: dict[str, Upload] = {}
            if request.method == "POST":
                parsed = await request.form(max_files=1, max_fields=50, max_part_size=MAX_UPLOAD_BYTES)
                for key, value in parsed.multi_items():
                    if isinstance(value, UploadFile):
                        files[key] = Upload(value.filename or "", await value.read(MAX_UPLOAD_BYTES + 1))
                    else:
                        form[key] = value
                offered = form.pop("csrf_token", None) or request.headers.get("x-csrf-token")
                if not self.auth.csrf_ok(signed.token, offered):
                    return self.refuse(request, 403, "missing or invalid CSRF token; reload the page", signed)
                if any(len(f.content) > MAX_UPLOAD_BYTES for f in files.values()):
                    return self.refuse(request, 413, "the file is larger than 8 MB", signed)
            partial = bool(request.headers.get("hx-request"))
            ask = Ask(
                signed.user,
                self.clock(),
                query=dict(request.query_params),
                path={k: str(v) for k, v in request.path_params.items()},
                form=form,
                files=files,
                partial=partial,
            )
            answer = await run_in_threadpool(spec.view, ask)
            return self._respond(answer, signed)

        return endpoint

    # ------------------------------------------------------------ sign-in and out

    def _login_page(self, next_url: str, problem: str | None, status: int, email: str = "") -> Response:
        nonce, cookie = self.auth.login_nonce()
        shown = Shown(
            "login.html", {"next": next_url, "problem": problem, "nonce": nonce, "email": email}, status
        )
        response = self._respond(shown, None)
        response.set_cookie(LOGIN_COOKIE, cookie, **self.auth.cookie_options(3600))  # type: ignore[arg-type]
        return response

    def _sign_in(self, email: str, password: str) -> tuple[accounts.Attempt, str | None]:
        now = self.clock()
        with self.db.begin() as s:
            attempt = accounts.sign_in(s, email, password, now)
            cookie = self.auth.open(s, attempt.user, now) if attempt.user else None
        return attempt, cookie

    async def login(self, request: Request) -> Response:
        next_url = _safe_next(request.query_params.get("next"))
        if request.method == "GET":
            return self._login_page(next_url, None, 200)
        form = await request.form(max_files=0, max_fields=10)
        nonce = form.get("nonce")
        if not self.auth.login_nonce_ok(request.cookies.get(LOGIN_COOKIE), str(nonce) if nonce else None):
            return self._login_page(next_url, "The sign-in form expired; please try again.", 403)
        email, password = str(form.get("email") or ""), str(form.get("password") or "")
        attempt, cookie = await run_in_threadpool(self._sign_in, email, password)
        if attempt.outcome is SignIn.LOCKED:
            log.warning("dashboard sign-in refused: account locked")
            until = attempt.locked_until
            when = f" until {until:%H:%M} UTC" if until else ""
            return self._login_page(
                next_url, f"Too many failed attempts: this account is locked{when}.", 429, email
            )
        if attempt.outcome is SignIn.WRONG or cookie is None:
            log.info("dashboard sign-in failed")
            return self._login_page(next_url, "Wrong email or password.", 401, email)
        response = _headers(RedirectResponse(next_url, status_code=303))
        response.set_cookie(SESSION_COOKIE, cookie, **self.auth.cookie_options(self.auth.max_age_s))  # type: ignore[arg-type]
        response.delete_cookie(LOGIN_COOKIE, path="/app")
        return response

    def _close(self, cookie: str | None) -> None:
        with self.db.begin() as s:
            self.auth.close(s, cookie)

    async def logout(self, request: Request) -> Response:
        cookie = request.cookies.get(SESSION_COOKIE)
        signed = await run_in_threadpool(self._resolve, cookie)
        if signed is not None:
            form = await request.form(max_files=0, max_fields=5)
            offered = form.get("csrf_token")
            if not self.auth.csrf_ok(signed.token, str(offered) if offered else None):
                return self.refuse(request, 403, "missing or invalid CSRF token; reload the page", signed)
            await run_in_threadpool(self._close, cookie)
        response = _headers(RedirectResponse("/app/login", status_code=303))
        response.delete_cookie(SESSION_COOKIE, path="/app")
        return response
