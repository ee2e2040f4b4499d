"""The `automation` command. Each command group lives in its own module here.

`main()` turns every `UserError` into one line on stderr and a non-zero exit,
and any other failure into one line too (set AUTOMATION_DEBUG=1 for the
traceback): a user never sees a stack trace.
"""

from __future__ import annotations

import logging
import os
import sys

from automation.cli import (
    campaign_cmd,
    core,
    customers_cmd,
    deliveries_cmd,
    demo_cmd,
    init_cmd,
    journeys_cmd,
    keys_cmd,
    status_cmd,
    suppress_cmd,
    traits_cmd,
    users_cmd,
    web_cmd,
)
from automation.cli.app import app, err_console
from automation.errors import UserError, report_lines

__all__ = [
    "app",
    "campaign_cmd",
    "core",
    "customers_cmd",
    "deliveries_cmd",
    "demo_cmd",
    "init_cmd",
    "journeys_cmd",
    "keys_cmd",
    "main",
    "status_cmd",
    "suppress_cmd",
    "traits_cmd",
    "users_cmd",
    "web_cmd",
]


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("AUTOMATION_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("dramatiq", "alembic", "apscheduler.executors", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        app()
    except UserError as exc:
        for line in report_lines(exc):
            err_console.print(line, highlight=False, markup=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("AUTOMATION_DEBUG"):
            raise
        err_console.print(
            f"error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
            "(set AUTOMATION_DEBUG=1 for details)",
            highlight=False,
            markup=False,
        )
        sys.exit(1)
