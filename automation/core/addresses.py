"""The one normal form of an email address and a phone number, and the one function that makes it.

Customers' addresses (ingest, the tracking API), the suppression list (the CLI,
the dashboard, provider webhooks, the worker) and every lookup between them
use this form, so a bounce for `Ada@Example.COM` suppresses `ada@example.com`.
Email: trimmed and lower-cased. Phone: E.164, with spaces, dashes, dots and
brackets removed. Pure.
"""

from __future__ import annotations

import re

from automation.core.statuses import Channel

#: One `@`, no white space (so no CR/LF), and a dotted domain: `@` alone or `a@b` is no address.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
#: `[0-9]`, not `\d`: Arabic-Indic or superscript digits are not E.164; no country code starts with 0.
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_PHONE_PUNCTUATION = re.compile(r"[\s\-().]")
PHONE_FORM = "in E.164 form, like +15551234567"


class AddressError(ValueError):
    """Not an address of the channel."""


def normal_email(text: str) -> str:
    """The email address in normal form; raises `AddressError` when it is not one."""
    value = text.strip().lower()
    if not _EMAIL.match(value):
        raise AddressError(f"{text.strip()!r} is not an email address")
    return value


def normal_phone(text: str) -> str:
    """The phone number in E.164; raises `AddressError` when it is not one."""
    value = _PHONE_PUNCTUATION.sub("", text)
    if not _PHONE.match(value):
        raise AddressError(f"{text.strip()!r} is not a phone number {PHONE_FORM}")
    return value


def normalize(channel: str, address: str) -> str:
    """The address of the channel in normal form; raises `AddressError` when it is not one."""
    if channel == Channel.EMAIL:
        return normal_email(address)
    if channel == Channel.SMS:
        return normal_phone(address)
    raise AddressError(f"unknown channel {channel!r} (email or sms)")


def channel_of(address: str) -> Channel:
    """`email` for anything with an @, else `sms`."""
    return Channel.EMAIL if "@" in address else Channel.SMS
