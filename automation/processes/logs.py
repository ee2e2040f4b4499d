"""Logging set-up for every process: one format, chatty HTTP clients capped, secrets redacted.

The SendGrid and Twilio SDKs log request headers (the API key, Basic credentials)
and whole payloads (addresses, names) at DEBUG or INFO. Their loggers are capped
at WARNING, and a filter on every root handler rewrites whatever still carries
a credential, an email address or a phone number, whatever logger it came from.
"""

from __future__ import annotations

import logging
import re

from automation.errors import ConfigError

LEVEL_SETTING = "AUTOMATION_LOG_LEVEL"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Loggers that print request headers, bodies or every poll; none of it is an operator's business.
CAPPED = (
    "python_http_client",
    "sendgrid",
    "twilio",
    "urllib3",
    "httpx",
    "httpcore",
    "dramatiq",
    "alembic",
    "apscheduler.executors",
)
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: (pattern, replacement); credentials first, so that an address inside one is not half-kept.
REDACTIONS = (
    (
        re.compile(r"(?i)\b(authorization['\"]?\s*[:=]\s*['\"]?)(?:bearer\s+|basic\s+)?[^\s'\",}]+"),
        r"\1<redacted>",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 <redacted>"),
    (re.compile(r"\bSG\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)?"), "<redacted>"),
    (
        re.compile(
            r"(?i)\b((?:api[_-]?key|auth[_-]?token|secret|password)['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"
        ),
        r"\1<redacted>",
    ),
    (re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"(?i)(?:\+|%2B)[1-9]\d{6,14}\b"), "<phone>"),
)


def redact(text: str) -> str:
    """The text with credentials, email addresses and phone numbers replaced."""
    for pattern, replacement in REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class Redacting(logging.Filter):
    """Rewrites a record's message (and its traceback) before any handler formats it."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def level_from(value: str | None) -> int:
    """A level name from the environment; anything else is one line naming the setting."""
    name = (value or "INFO").strip().upper()
    if name not in LEVELS:
        raise ConfigError(f"invalid setting {LEVEL_SETTING}: {value!r} is not one of {', '.join(LEVELS)}")
    return logging.getLevelNamesMapping()[name]


def guard() -> None:
    """Cap the chatty loggers and put the redacting filter on every root handler (idempotent)."""
    for name in CAPPED:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, Redacting) for f in handler.filters):
            handler.addFilter(Redacting())


def configure(value: str | None) -> None:
    """The CLI's logging: level from AUTOMATION_LOG_LEVEL (checked), one format, guarded."""
    logging.basicConfig(level=level_from(value), format=FORMAT)
    guard()
