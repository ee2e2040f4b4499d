"""`automation web`: webhooks, unsubscribe links, the tracking API, health, metrics and the dashboard."""

from __future__ import annotations

from typing import Annotated

import typer

from automation.cli.app import app, console
from automation.config import load_settings, require_safe_to_send
from automation.processes.runtime import open_database


@app.command()
def web(
    host: Annotated[str, typer.Option(metavar="HOST", help="Interface to listen on.")] = "0.0.0.0",
    port: Annotated[
        int | None,
        typer.Option(metavar="PORT", min=1, max=65535, help="Port to listen on (default: $PORT, else 8000)."),
    ] = None,
) -> None:
    """Serve webhooks, unsubscribe links, the tracking API, /healthz, /metrics and the dashboard.

    The dashboard is under /app/.
    """
    settings = load_settings()
    require_safe_to_send(settings)
    from automation.web.app import create_app, serve

    # No ping before each transaction (a round trip per tracking call): a connection lost to a
    # database restart fails one request with 503, which invalidates the pool, and the client
    # retries. No prepared statements: the tracking API's batches grow `customers` under them.
    _, sessions = open_database(settings, pre_ping=False, prepare=False)
    application = create_app(settings, sessions)
    listen = port if port is not None else settings.web_port
    console.print(f"web listening on http://{host}:{listen}", highlight=False)
    serve(application, host, listen)
