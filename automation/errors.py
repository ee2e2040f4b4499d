"""One exception root for the project.

`UserError` subclasses are the ones a person caused (bad YAML, a bad flag, a
database that does not answer): the CLI prints their message as one line and
exits non-zero. Provider errors tell the worker whether to retry.
"""

from __future__ import annotations


class AutomationError(Exception):
    """Root of every error this project raises on purpose."""


class UserError(AutomationError):
    """Something the user can fix; printed as one line, never a traceback."""

    exit_code = 1


class ConfigError(UserError):
    """A setting is missing or malformed."""


class UnsafeSettings(ConfigError):
    """Settings that would send to real people unsafely; `problems` holds one line per setting."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class JourneyError(UserError):
    """One or more journey files are invalid; `problems` holds each `file:line:col: msg`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class DefinitionError(UserError):
    """A definition file or a `--where` filter is refused; the message is `FILE:LINE:COL: why`."""


def report_lines(exc: UserError) -> list[str]:
    """How a user error is shown: each journey problem as it is, anything else as `error: ...` lines."""
    if isinstance(exc, JourneyError):
        return exc.problems
    return [f"error: {line}" for line in str(exc).splitlines()]


class DatabaseUnavailable(UserError):
    """The database URL does not connect."""


class ProviderError(AutomationError):
    """A provider refused or failed a send."""


class TransientProviderError(ProviderError):
    """Try again later: 429, 5xx, a timeout. `retry_after_s` is the provider's hint."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentProviderError(ProviderError):
    """Never retry. `suppress_reason` is set when the address itself is bad.

    `about_recipient` says the refusal names a recipient of the request, so the
    other recipients of a refused batch are worth sending one by one.
    """

    def __init__(
        self, message: str, suppress_reason: str | None = None, about_recipient: bool = False
    ) -> None:
        super().__init__(message)
        self.suppress_reason = suppress_reason
        self.about_recipient = about_recipient


class PointsRefusal(UserError):
    """A record the points ledger refuses (`not enough points`): that record changes nothing."""
