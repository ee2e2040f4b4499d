"""The Starlette application of the `web` process, and serving it with uvicorn.

Routes: the SendGrid Event Webhook, Twilio's status callback and inbound
messages, the preference centre (`/unsubscribe/TOKEN`) and double opt-in
confirmations (`/confirm/TOKEN`), the tracking API (`/v1/*`, see `tracking`),
`/healthz`, `/metrics`, and the marketers' dashboard under `/app/`
(`automation.web.dashboard`; `/` redirects there). A webhook is
answered 2xx only after its events are committed; a request we refuse gets a
4xx and changes nothing; a database failure gets a 503 so the provider
resends later.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from automation.config import Settings
from automation.core import feedback
from automation.core.feedback import Feedback, MalformedEvent
from automation.insight.metrics import ledger_registry, redis_client
from automation.processes.wakeup import Waker
from automation.web import health, ledger, preferences
from automation.web.body_limit import BodyLimit
from automation.web.dashboard.catalog_view import CatalogView
from automation.web.security_headers import SecurityHeaders
from automation.web.sendgrid_events import Rejected, SignedEventWebhook, load_public_key
from automation.web.tracking import MAX_CALL_BYTES, MAX_REQUEST_BYTES, Tracking, too_large
from automation.web.twilio_hooks import EMPTY_TWIML, SignedTwilioRequests

log = logging.getLogger("automation.web")

# The most a request body may carry, by path prefix (README, "The web process"); enforced
# while the body streams in, before any signature check. Other paths get DEFAULT_BODY_LIMIT.
BODY_LIMITS = {
    "/webhooks/sendgrid": 4 * 1024 * 1024,
    "/webhooks/twilio/": 64 * 1024,
    "/unsubscribe/": 4 * 1024,
    "/confirm/": 1024,
    "/v1/": MAX_CALL_BYTES,
    "/v1/batch": MAX_REQUEST_BYTES,
}
DEFAULT_BODY_LIMIT = 64 * 1024

Clock = Callable[[], dt.datetime]


def _wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class WebApp:
    """The handlers and what they share: verifiers, sessions, clock, metrics."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], clock: Clock) -> None:
        key = settings.sendgrid_webhook_public_key
        self.signed_events = SignedEventWebhook(
            load_public_key(key) if key else None, dt.timedelta(seconds=settings.webhook_tolerance_s)
        )
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
        self.twilio = SignedTwilioRequests(token, settings.public_url)
        self.sessions = sessions
        self.clock = clock
        self.catalogs = catalogs = CatalogView(settings.journeys_dir, settings.templates_dir)
        self.preferences = preferences.PreferenceCentre(
            sessions,
            lambda: catalogs.current()[0],
            settings.unsubscribe_secrets,
            settings.preference_link_days,
            settings.email_from_name,
            clock,
        )
        self.redis = redis_client(settings.redis_url)
        self.tick_interval_s = settings.tick_interval_s
        self.registry = ledger_registry(sessions, self.redis, settings.redis_namespace)
        self.requests_total = Counter(
            "automation_webhook_requests",
            "Webhook requests by endpoint and outcome (accepted, rejected, unavailable).",
            ["endpoint", "outcome"],
            registry=self.registry,
        )
        waker = Waker(settings.redis_url, settings.redis_namespace) if settings.redis_url else None
        self.tracking = Tracking(
            sessions,
            clock,
            settings.order_event,
            self.registry,
            waker.wake if waker else lambda: None,
            settings.api_rate_per_s,
            lambda: catalog.programme if (catalog := catalogs.current(settings.catalog_check_s)[0]) else None,
        )
        if key is None:
            log.warning("SENDGRID_WEBHOOK_PUBLIC_KEY is not set: SendGrid events are refused")
        if token is None:
            log.warning("TWILIO_AUTH_TOKEN is not set: Twilio callbacks are refused")

    def routes(self) -> list[Route]:
        return [
            Route("/webhooks/sendgrid", self.sendgrid_webhook, methods=["POST"]),
            Route("/webhooks/twilio/status", self.twilio_status, methods=["POST"]),
            Route("/webhooks/twilio/inbound", self.twilio_inbound, methods=["POST"]),
            Route("/unsubscribe/{token}", self.unsubscribe_page, methods=["GET", "POST"]),
            Route("/confirm/{token}", self.confirm_page, methods=["GET", "POST"]),
            *self.tracking.routes(),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
        ]

    # ------------------------------------------------------------ webhooks

    def _store(self, items: Sequence[Feedback]) -> int:
        with self.sessions.begin() as s:
            return len(ledger.record(s, items, self.clock()))

    async def _accept(
        self, endpoint: str, items: Sequence[Feedback], reply: Callable[[int], Response]
    ) -> Response:
        """Commit the events, then answer `reply(new events)`; a 503 (the provider resends) if we cannot."""
        try:
            fresh = await run_in_threadpool(self._store, items)
        except SQLAlchemyError as exc:
            self.requests_total.labels(endpoint, "unavailable").inc()
            log.error("%s: cannot record events: %s", endpoint, type(exc).__name__)
            return JSONResponse({"error": "database unavailable"}, status_code=503)
        self.requests_total.labels(endpoint, "accepted").inc()
        log.info("%s: %d events, %d new", endpoint, len(items), fresh)
        return reply(fresh)

    def _refuse(self, endpoint: str, exc: Rejected) -> Response:
        self.requests_total.labels(endpoint, "rejected").inc()
        log.warning("%s: refused (%d): %s", endpoint, exc.status, exc)
        return JSONResponse({"error": str(exc), **exc.detail}, status_code=exc.status)

    async def sendgrid_webhook(self, request: Request) -> Response:
        """A signed batch: its valid events are stored, the others reported (never a 5xx for them)."""
        try:
            body = await request.body()
            self.signed_events.verify(request.headers, body, self.clock())
            batch = self.signed_events.parse(body)
        except Rejected as exc:
            return self._refuse("sendgrid", exc)
        refused = [{"event": index, "reason": reason} for index, reason in batch.refused]
        if batch.refused:
            reasons = "; ".join(reason for _, reason in batch.refused[:5])
            log.warning("sendgrid: %d of %d events refused: %s", len(refused), batch.size, reasons)
        if batch.refused and not batch.valid:
            return self._refuse("sendgrid", Rejected(400, "no valid event in the batch", refused=refused))
        return await self._accept(
            "sendgrid",
            batch.valid,
            lambda new: JSONResponse({"events": batch.size, "new": new, "refused": refused}),
        )

    async def _twilio_form(self, request: Request) -> dict[str, str]:
        body = await request.body()
        return self.twilio.form(request.headers, request.url.path, request.url.query, body)

    async def twilio_status(self, request: Request) -> Response:
        try:
            params = await self._twilio_form(request)
            delivery_id = feedback.delivery_id(request.query_params.get("delivery_id"))
            item = feedback.twilio_status(params, delivery_id, self.clock())
        except MalformedEvent as exc:
            return self._refuse("twilio_status", Rejected(400, str(exc)))
        except Rejected as exc:
            return self._refuse("twilio_status", exc)
        return await self._accept("twilio_status", [item], lambda _new: Response(status_code=204))

    async def twilio_inbound(self, request: Request) -> Response:
        try:
            params = await self._twilio_form(request)
            item = feedback.twilio_inbound(params, self.clock())
        except MalformedEvent as exc:
            return self._refuse("twilio_inbound", Rejected(400, str(exc)))
        except Rejected as exc:
            return self._refuse("twilio_inbound", exc)
        return await self._accept(
            "twilio_inbound", [item], lambda _new: Response(EMPTY_TWIML, media_type="text/xml")
        )

    # ------------------------------------------------------------ unsubscribe

    async def unsubscribe_page(self, request: Request) -> Response:
        """The preference centre of one delivery (`automation.web.preferences`)."""
        token, method = request.path_params["token"], request.method
        body = await request.body() if method == "POST" else b""
        return await self._preferences(self.preferences.handle, token, method, body)

    async def confirm_page(self, request: Request) -> Response:
        """A double opt-in confirmation link."""
        return await self._preferences(self.preferences.confirm, request.path_params["token"], request.method)

    async def _preferences(self, handler: Callable[..., preferences.Answer], *args: object) -> Response:
        try:
            answer = await run_in_threadpool(handler, *args)
        except SQLAlchemyError as exc:
            log.error("preferences: %s", type(exc).__name__)
            return PlainTextResponse("temporarily unavailable, please try again", status_code=503)
        return HTMLResponse(answer.html, status_code=answer.status, headers={"Cache-Control": "no-store"})

    # ------------------------------------------------------------ health and metrics

    async def healthz(self, _request: Request) -> Response:
        interval = dt.timedelta(seconds=self.tick_interval_s)
        result = await run_in_threadpool(health.check, self.sessions, self.redis, self.clock(), interval)
        return JSONResponse(result.as_json(), status_code=200 if result.ok else 503)

    async def metrics(self, _request: Request) -> Response:
        output = await run_in_threadpool(generate_latest, self.registry)
        return Response(output, media_type=CONTENT_TYPE_LATEST)


def create_app(settings: Settings, sessions: sessionmaker[Session], clock: Clock = _wall_clock) -> Starlette:
    """The web application over this database; `clock` judges webhook freshness and sessions.

    The body limit wraps every route and any later middleware, so no route
    reads more than its limit and nothing (signatures, sessions, parsing) runs
    on a refused body; the security headers go on every answer, a 413 included.
    """
    from automation.web.dashboard.app import MAX_UPLOAD_BYTES, Dashboard

    dashboard = Dashboard(settings, sessions, clock)
    web = WebApp(settings, sessions, clock)
    limits = {**BODY_LIMITS, "/app/": MAX_UPLOAD_BYTES + 64 * 1024}  # an upload and its multipart framing

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # The journeys (and the loyalty programme the tracking API applies) are read before the
        # server listens, not by its first tracking request, which would wait that long.
        await run_in_threadpool(web.catalogs.current)
        yield

    return Starlette(
        routes=[*web.routes(), *dashboard.routes()],
        lifespan=lifespan,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(BodyLimit, limits=limits, default=DEFAULT_BODY_LIMIT, answers={"/v1/": too_large}),
        ],
    )


def serve(app: Starlette, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT; uvicorn finishes in-flight requests first.

    Uvicorn re-raises the signal it caught once it has shut down; with this
    no-op handler in place a SIGTERM stop exits 0, like the worker and scheduler.
    """
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    # What was built to start (modules, the app, the catalog) lives as long as the process: out of
    # the collector's sight, a full collection no longer walks it (110 ms each, 3% of the tracking
    # API's time at 15k events/s).
    gc.freeze()
    uvicorn.run(app, host=host, port=port, access_log=False, log_config=None, proxy_headers=True)
