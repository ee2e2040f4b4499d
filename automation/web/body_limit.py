"""A cap on every request body, enforced while it streams in.

It wraps every route of the web process, so that it runs before any
signature check, authentication or parsing: a declared `Content-Length` over
the route's limit is answered 413 without reading a byte, and a chunked body is
counted as it arrives and cut off (413) the moment it passes the limit. A
handler never holds more than its route's limit in memory, whatever the client
sends. Each route's limit is the longest matching path prefix in `limits`;
any other path gets `default`. The 413 is JSON `{"error": ...}`, or what
`answers` gives for the longest matching prefix (an API with its own error
shape).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    """Raised from `receive` once the body passes the limit; the middleware answers 413."""


Answer = Callable[[int], Response]
T = TypeVar("T")


def limit_for(path: str, limits: Mapping[str, T], default: T) -> T:
    """The value of the longest prefix of `path` in `limits`, else `default`."""
    matches = [prefix for prefix in limits if path.startswith(prefix)]
    return limits[max(matches, key=len)] if matches else default


def too_large(limit: int) -> Response:
    # Closing the connection stops a client that keeps streaming after the answer.
    return JSONResponse(
        {"error": f"body over this route's limit of {limit} bytes"},
        status_code=413,
        headers={"Connection": "close"},
    )


class BodyLimit:
    """ASGI middleware: refuse (413) a request body over its route's byte limit."""

    def __init__(
        self,
        app: ASGIApp,
        limits: Mapping[str, int],
        default: int,
        answers: Mapping[str, Answer] | None = None,
    ) -> None:
        self.app = app
        self.limits = dict(limits)
        self.default = default
        self.answers = dict(answers or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"], self.limits, self.default)
        answer = limit_for(scope["path"], self.answers, too_large)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            await answer(limit)(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, counted_receive, send)
        except BodyTooLarge:
            await answer(limit)(scope, receive, send)
