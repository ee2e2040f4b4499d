"""The Segment-compatible tracking API: `/v1/identify`, `/track`, `/page`, `/screen`, `/alias`, `/batch`.

A request is authenticated by a write key (HTTP Basic user name, or
`writeKey` in the body), bounded in size (gzip included), rate-limited per key
when configured, mapped call by call onto ingest records (`core.segment`), and
committed in one transaction before the 200: Segment's clients treat only a
200 as success and retry anything else, and event keys (`messageId`) make a
retry change nothing. Then the scheduler is woken for event journeys.

Statuses: 200 `{"success": true}` (with `rejected` when some calls were not
taken); errors are `{"success": false, "code", "message"}`: 400 not JSON, or
no call taken (with `rejected`); 401 no valid key; 413 over 32 KB for a
call or 500 KB for a request; 429 over the key's rate, with Retry-After; 503
database unavailable (the client retries).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from automation.core.programme import Programme
from automation.core.records import RecordError, may_hold_unstorable
from automation.core.segment import Call, parse_call
from automation.ingest.live import store_calls
from automation.store import keys
from automation.web.bounded import BadEncoding, TooLarge, read_bounded
from automation.web.ratelimit import RateLimit

log = logging.getLogger("automation.web.tracking")

MAX_CALL_BYTES = 32 * 1024
MAX_REQUEST_BYTES = 500 * 1024
MAX_BATCH = 2500
SINGLE = ("identify", "track", "page", "screen", "alias", "group")


class Refused(Exception):
    """A request answered with `status` and this reason; nothing was stored."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.headers = headers or {}


@dataclass
class Parsed:
    calls: list[Call]
    indexes: list[int]
    rejected: list[tuple[int, str]]


def _basic_key(header: str | None) -> str | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def _items(kind: str, body: Any) -> tuple[list[tuple[Any, Any]], dict[str, Any]]:
    """The calls of a request, each with its type, and the batch's shared context."""
    if kind != "batch":
        return [(kind, body)], {}
    batch = body.get("batch")
    if not isinstance(batch, list) or not batch:
        raise Refused(400, "batch must be a non-empty list of calls")
    if len(batch) > MAX_BATCH:
        raise Refused(413, f"a batch holds at most {MAX_BATCH} calls")
    context = body.get("context")
    shared = context if isinstance(context, dict) else {}
    return [(item.get("type") if isinstance(item, dict) else None, item) for item in batch], shared


def _serialised(value: Any) -> bytes:
    """A value as a client would send it: compact JSON in UTF-8, its size as the 32 KB limit counts it.

    orjson does it a twentieth of the time the standard library takes, which was a tenth of a
    batch's cost; what it refuses (a lone surrogate, an integer past 64 bits) is written by the
    standard library instead, the surrogate kept for `may_hold_unstorable` to find.
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8", "surrogatepass")


# The levels a call's text, and its batch's context, sit under in the record made of them.
ENCLOSING = 2


def parse_body(kind: str, body: Any, received: dt.datetime) -> Parsed:
    """Each call of the request parsed, or rejected with its index and reason.

    A batch's call is serialised once: for its size, and to tell whether its
    values need the walk for unstorable ones (`may_hold_unstorable`).
    """
    items, context = _items(kind, body)
    context_text = _serialised(context) if context else b""
    parsed = Parsed([], [], [])
    for index, (item_kind, item) in enumerate(items):
        plain = False
        if kind == "batch":
            text = _serialised(item)
            if len(text) > MAX_CALL_BYTES:
                raise Refused(413, f"call {index} is over {MAX_CALL_BYTES // 1024} KB")
            plain = not may_hold_unstorable(text + context_text, ENCLOSING)
        try:
            parsed.calls.append(parse_call(str(item_kind), item, received, context, plain))
            parsed.indexes.append(index)
        except RecordError as exc:
            parsed.rejected.append((index, str(exc)))
    return parsed


def _rejected(items: list[tuple[int, str]]) -> list[dict[str, Any]]:
    return [{"index": i, "reason": r} for i, r in sorted(items)]


CODES = {400: "bad_request", 401: "unauthorized", 413: "too_large", 429: "rate_limited", 503: "unavailable"}


def _error(
    status: int,
    message: str,
    rejected: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error in the shape Segment's and RudderStack's clients read (`code`, `message`)."""
    body: dict[str, Any] = {"success": False, "code": CODES[status], "message": message}
    if rejected is not None:
        body["rejected"] = rejected
    return JSONResponse(body, status, headers)


def too_large(limit: int) -> Response:
    """The 413 of a body over `limit` bytes, as the web process's body limit answers it here."""
    return _error(413, f"the body is over {limit // 1024} KB", headers={"Connection": "close"})


class Tracking:
    """The `/v1/*` handlers and what they share."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Callable[[], dt.datetime],
        order_event: str,
        registry: CollectorRegistry,
        wake: Callable[[], None],
        rate_per_s: float | None = None,
        programme: Callable[[], Programme | None] = lambda: None,
    ) -> None:
        self.sessions = sessions
        self.programme = programme
        self.clock = clock
        self.order_event = order_event
        self.wake = wake
        self.limit = RateLimit(rate_per_s) if rate_per_s else None
        self.requests = Counter(
            "automation_tracking_requests",
            "Tracking API requests by endpoint and status.",
            ["endpoint", "status"],
            registry=registry,
        )
        self.calls = Counter(
            "automation_tracking_calls", "Tracking API calls by outcome.", ["outcome"], registry=registry
        )

    def routes(self) -> list[Route]:
        return [Route(f"/v1/{kind}", self.handle, methods=["POST"]) for kind in (*SINGLE, "batch")]

    def _admit(self, session: Session, key: str | None) -> None:
        """Refuse (401, 429) unless the key is live and under its rate; in the request's transaction."""
        name = keys.valid(session, key) if key else None
        if name is None:
            raise Refused(401, "a valid write key is required (HTTP Basic user name, or writeKey)")
        if self.limit is not None:
            wait_s = self.limit.take(name)
            if wait_s:
                raise Refused(429, "over the write key's rate", {"Retry-After": str(wait_s)})

    def _check(self, key: str | None) -> None:
        with self.sessions() as s:
            self._admit(s, key)

    async def _read(self, request: Request, kind: str) -> Any:
        limit = MAX_REQUEST_BYTES if kind == "batch" else MAX_CALL_BYTES
        try:
            raw = await read_bounded(request, limit)
        except TooLarge:
            raise Refused(413, f"the body is over {limit // 1024} KB") from None
        except BadEncoding as exc:
            raise Refused(400, str(exc)) from None
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise Refused(400, "the body is not JSON") from None
        except RecursionError:
            raise Refused(400, "the body is nested too deep") from None
        if not isinstance(body, dict):
            raise Refused(400, "the body must be a JSON object")
        return body

    def _store(self, key: str | None, parsed: Parsed) -> tuple[list[tuple[int, str]], int]:
        admit = functools.partial(self._admit, key=key)
        stored = store_calls(
            self.sessions, parsed.calls, self.clock(), self.order_event, admit, self.programme()
        )
        return [(parsed.indexes[i], reason) for i, reason in stored.refused], stored.new_events

    async def handle(self, request: Request) -> Response:
        kind = request.url.path.rsplit("/", 1)[-1]
        try:
            response = await self._handle(request, kind)
        except Refused as exc:
            response = _error(exc.status, str(exc), headers=exc.headers)
        self.requests.labels(kind, str(response.status_code)).inc()
        return response

    async def _handle(self, request: Request, kind: str) -> Response:
        body = await self._read(request, kind)
        key = _basic_key(request.headers.get("authorization"))
        if key is None and isinstance(body.get("writeKey"), str):
            key = body["writeKey"]
        if not key:
            raise Refused(401, "a valid write key is required (HTTP Basic user name, or writeKey)")
        parsed = parse_body(kind, body, self.clock())
        refused: list[tuple[int, str]] = []
        new_events = 0
        try:
            if parsed.calls:
                refused, new_events = await run_in_threadpool(self._store, key, parsed)
            else:
                await run_in_threadpool(self._check, key)
        except SQLAlchemyError as exc:
            log.error("tracking: cannot store calls: %s", type(exc).__name__)
            raise Refused(503, "database unavailable, try again") from None
        rejected = parsed.rejected + refused
        taken = len(parsed.calls) - len(refused)
        self.calls.labels("stored").inc(taken)
        self.calls.labels("rejected").inc(len(rejected))
        if taken == 0:
            return _error(400, "no call was taken", _rejected(rejected))
        reply: dict[str, Any] = {"success": True}
        if rejected:
            reply["rejected"] = _rejected(rejected)
        if new_events:
            self.wake()  # the events are committed; `wake` returns at once (the publish is elsewhere)
        return JSONResponse(reply)
