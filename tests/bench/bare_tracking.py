"""The baseline for API ingest: a bare Starlette `/v1/batch` that parses the body and COPYs its events.

No auth, no validation, no customers, no statistics: only what any endpoint
must do (read, gunzip, parse JSON, write the rows) so that the tracking API's
rate can be read as a share of it. `python -m tests.bench.bare_tracking DSN PORT`.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import sys
import threading

import psycopg
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

COLUMNS = "event_key, customer_id, name, occurred_at, properties, received_at"


def build(dsn: str) -> Starlette:
    local = threading.local()

    def connection() -> psycopg.Connection:
        if not hasattr(local, "conn"):
            local.conn = psycopg.connect(dsn)
        return local.conn

    def write(items: list[dict]) -> None:
        now = dt.datetime.now(dt.UTC)
        conn = connection()
        with conn.cursor() as cur, cur.copy(f"COPY events ({COLUMNS}) FROM STDIN") as copy:
            for item in items:
                copy.write_row(
                    (
                        item["messageId"],
                        item["userId"],
                        item["event"],
                        item.get("timestamp") or now,
                        json.dumps(item.get("properties", {})),
                        now,
                    )
                )
        conn.commit()

    async def batch(request: Request) -> JSONResponse:
        raw = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            raw = gzip.decompress(raw)
        await run_in_threadpool(write, json.loads(raw)["batch"])
        return JSONResponse({"success": True})

    return Starlette(routes=[Route("/v1/batch", batch, methods=["POST"])])


if __name__ == "__main__":
    uvicorn.run(build(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
