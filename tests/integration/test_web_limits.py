"""Request bodies are capped per route while they stream, before any signature work.

In-process (Starlette TestClient): a declared or chunked body over a route's
limit is a 413 with a JSON reason, and nothing is recorded. As a user runs it
(`automation web` on a loopback port): chunked bodies many times the limit leave
the process's peak memory (VmHWM from /proc) where it was.
"""

from __future__ import annotations

import select
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from automation.config import Settings
from automation.web.app import BODY_LIMITS, DEFAULT_BODY_LIMIT
from automation.web.body_limit import limit_for
from tests.harness import BIN
from tests.integration.test_web_process import free_port, start, stop, wait_for

SENDGRID_LIMIT = BODY_LIMITS["/webhooks/sendgrid"]
TWILIO_LIMIT = BODY_LIMITS["/webhooks/twilio/"]


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/webhooks/sendgrid", SENDGRID_LIMIT),
        ("/webhooks/twilio/status", TWILIO_LIMIT),
        ("/webhooks/twilio/inbound", TWILIO_LIMIT),
    ],
)
def test_a_body_over_the_route_limit_is_413_whether_declared_or_chunked(
    client: TestClient, path: str, limit: int
) -> None:
    declared = client.post(path, content=b"x" * (limit + 1))
    streamed = client.post(path, content=chunks(limit + 128 * 1024))
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json() == {"error": f"body over this route's limit of {limit} bytes"}
        assert response.headers["connection"] == "close"


@pytest.mark.parametrize(
    ("path", "limit"),
    [("/unsubscribe/1.abc", BODY_LIMITS["/unsubscribe/"]), ("/healthz", DEFAULT_BODY_LIMIT)],
)
def test_routes_that_read_no_body_refuse_a_declared_one_over_the_limit(
    client: TestClient, path: str, limit: int
) -> None:
    assert client.post(path, content=b"x" * (limit + 1)).status_code == 413
    assert client.post(path, content=b"x" * limit).status_code != 413


def test_a_body_at_the_limit_reaches_the_signature_check(client: TestClient) -> None:
    response = client.post("/webhooks/sendgrid", content=b"x" * SENDGRID_LIMIT)
    assert response.status_code == 401
    assert response.json() == {"error": "missing signature headers"}


def test_the_longest_matching_prefix_sets_the_limit() -> None:
    limits = {"/v1/": 500, "/v1/track": 32}
    assert limit_for("/v1/track", limits, 7) == 32
    assert limit_for("/v1/batch", limits, 7) == 500
    assert limit_for("/elsewhere", limits, 7) == 7


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def post_chunked(port: int, path: str, total: int, size: int = 256 * 1024) -> tuple[bytes, int]:
    """Stream up to `total` bytes as one chunked POST; stop when the server answers.

    Returns the start of the answer and how many body bytes were sent.
    """
    sent = 0
    piece = f"{size:x}\r\n".encode() + b"x" * size + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        sock.sendall((head + "Transfer-Encoding: chunked\r\n\r\n").encode())
        try:
            while sent < total and not select.select([sock], [], [], 0)[0]:
                sock.sendall(piece)
                sent += size
        except (BrokenPipeError, ConnectionResetError):
            pass
        return sock.recv(4096), sent


def test_chunked_bodies_many_times_the_limit_leave_peak_memory_flat(
    web_settings: Settings, env: dict[str, str]
) -> None:
    port = free_port()
    web_env = {**env, "SENDGRID_WEBHOOK_PUBLIC_KEY": web_settings.sendgrid_webhook_public_key or ""}
    proc: subprocess.Popen[str] = start(
        [str(BIN), "web", "--host", "127.0.0.1", "--port", str(port)], web_env
    )
    try:
        wait_for(lambda: _answers(port))
        # Warm up: one refused body per route, so what follows measures only growth.
        for path in ("/webhooks/sendgrid", "/webhooks/twilio/inbound"):
            post_chunked(port, path, 2 * SENDGRID_LIMIT)
        before = peak_rss_kib(proc.pid)
        started = time.monotonic()
        for path in ("/webhooks/sendgrid", "/webhooks/twilio/inbound"):
            for _ in range(3):
                answer, sent = post_chunked(port, path, 40 * SENDGRID_LIMIT)
                assert answer.startswith(b"HTTP/1.1 413 "), answer
                assert sent < 40 * SENDGRID_LIMIT  # answered long before the body ended
                assert b"\r\nconnection: close\r\n" in answer
        assert time.monotonic() - started < 30
        grown_mib = (peak_rss_kib(proc.pid) - before) / 1024
        assert grown_mib < 8, f"peak RSS grew {grown_mib:.1f} MiB"
    finally:
        stop(proc)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            return sock.recv(12).startswith(b"HTTP/1.1")
    except OSError:
        return False
