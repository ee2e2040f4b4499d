"""The `automation` command. Each command group lives in its own module here, loaded on use.

`main()` turns every `UserError` into one line on stderr and a non-zero exit,
and any other failure into one line too (set AUTOMATION_DEBUG=1 for the
traceback): a user never sees a stack trace.
"""

from __future__ import annotations

import os
import sys

from automation.cli.app import app
from automation.errors import UserError, report_lines
from automation.processes import logs

__all__ = ["app", "main"]


def main() -> None:
    try:
        logs.configure(os.environ.get(logs.LEVEL_SETTING))
        app()
    except UserError as exc:
        for line in report_lines(exc):
            _error(line)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("AUTOMATION_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        _error(f"error: unexpected {type(exc).__name__}: {first} (set AUTOMATION_DEBUG=1 for details)")
        sys.exit(1)


def _error(line: str) -> None:
    from automation.cli.app import err_console

    err_console.print(line, highlight=False, markup=False)
