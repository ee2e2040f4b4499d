"""Local stand-ins for the SendGrid v3 mail API and the Twilio Messages API.

Real HTTP servers on 127.0.0.1 that the real SDKs talk to. Each records what
it received and answers from a script of responses (default: success), so a
test can make the provider answer 429, 503, 400 or slowly. Runnable as a
process too: `python -m tests.standins sendgrid|twilio PORT [--fail-rate R]`.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Reply:
    status: int = 202
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.time)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out and hung up is expected here, not an error."""


class StandIn:
    """A threaded HTTP server with a reply script and a log of requests."""

    kind = "base"

    def __init__(self, port: int = 0, fail_rate: float = 0.0, log_path: Path | None = None) -> None:
        self.received: list[Received] = []
        self.script: list[Reply] = []
        self.fail_rate = fail_rate
        self.log_path = log_path
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.rng = random.Random(7)
        self.delay_s = 0.0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                reply = owner.handle(self.path, dict(self.headers), raw)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload = json.dumps(reply.body or {}).encode() if reply.body is not None else b""
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = _Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> StandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def queue(self, *replies: Reply) -> None:
        with self.lock:
            self.script.extend(replies)

    def next_reply(self) -> Reply | None:
        with self.lock:
            if self.script:
                return self.script.pop(0)
            if self.fail_rate and self.rng.random() < self.fail_rate:
                return self.failure()
        return None

    def failure(self) -> Reply:
        raise NotImplementedError

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        raise NotImplementedError

    def record(self, item: Received, accepted: bool) -> None:
        with self.lock:
            if accepted:
                self.received.append(item)
                if self.log_path:
                    with self.log_path.open("a", encoding="utf-8") as fh:
                        fh.write(json.dumps({"path": item.path, "body": item.body}) + "\n")

    @property
    def accepted(self) -> list[Received]:
        with self.lock:
            return list(self.received)


class SendGridStandIn(StandIn):
    """POST /v3/mail/send: 202 with X-Message-Id, like SendGrid."""

    kind = "sendgrid"

    def messages(self) -> list[dict[str, Any]]:
        """Every accepted email as its recipient gets it: one per personalization, substitutions applied."""
        out = []
        for item in self.accepted:
            body = item.body
            content = {c["type"]: c["value"] for c in body["content"]}
            for p in body["personalizations"]:
                subs = p.get("substitutions", {})

                def fill(text: str, subs: dict[str, str] = subs) -> str:
                    for key, value in subs.items():
                        text = text.replace(key, value)
                    return text

                out.append(
                    {
                        "to": p["to"][0]["email"],
                        "subject": p.get("subject", body.get("subject")),
                        "headers": {**body.get("headers", {}), **p.get("headers", {})},
                        "custom_args": p.get("custom_args", {}),
                        "text": fill(content["text/plain"]),
                        "html": fill(content["text/html"]),
                        "at": item.at,
                    }
                )
        return out

    def failure(self) -> Reply:
        if self.rng.random() < 0.5:
            return Reply(429, {"errors": [{"message": "too many requests"}]}, {"Retry-After": "0"})
        return Reply(503, {"errors": [{"message": "service unavailable"}]})

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        reply = self.next_reply()
        body = json.loads(raw or b"{}")
        if path != "/v3/mail/send":
            return Reply(404, {"errors": [{"message": "not found"}]})
        if not headers.get("Authorization", "").startswith("Bearer "):
            return Reply(401, {"errors": [{"message": "authorization required"}]})
        if reply is None:
            reply = Reply(202, None, {"X-Message-Id": f"sg-{next(self.ids)}"}, self.delay_s)
        self.record(Received(path, headers, body), accepted=reply.status == 202)
        return reply


class TwilioStandIn(StandIn):
    """POST /2010-04-01/Accounts/{sid}/Messages.json: 201 with a message sid, like Twilio."""

    kind = "twilio"

    def failure(self) -> Reply:
        if self.rng.random() < 0.5:
            return Reply(429, {"code": 20429, "message": "Too Many Requests", "status": 429})
        return Reply(503, {"code": 20503, "message": "Service unavailable", "status": 503})

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        reply = self.next_reply()
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        auth = headers.get("Authorization", "")
        if not auth.startswith("Basic ") or ":" not in base64.b64decode(auth[6:]).decode():
            return Reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
        if not path.endswith("/Messages.json"):
            return Reply(404, {"code": 20404, "message": "not found", "status": 404})
        if reply is None:
            sid = f"SM{next(self.ids):032d}"
            reply = Reply(
                201,
                {"sid": sid, "status": "queued", "to": form.get("To"), "body": form.get("Body")},
                {},
                self.delay_s,
            )
        self.record(Received(path, headers, form), accepted=reply.status == 201)
        return reply


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["sendgrid", "twilio"])
    parser.add_argument("port", type=int)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--log", type=Path)
    args = parser.parse_args()
    cls = SendGridStandIn if args.kind == "sendgrid" else TwilioStandIn
    standin = cls(args.port, args.fail_rate, args.log)
    standin.delay_s = args.delay
    print(f"{args.kind} stand-in on {standin.url}", flush=True)
    standin.server.serve_forever()


if __name__ == "__main__":
    main()
