"""Money and dates as the customer reads them: their locale and their time zone. Pure (Babel).

Templates call `format_money(amount, currency)` and `format_date(value, format)`
(`automation.definitions.rendering` binds them to the customer being rendered):
a yen total prints without decimals (`¥4,200`), a euro total in `de_DE` as
`42,50 €`, and an instant as the date it was where the customer lives.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_date
from babel.dates import format_datetime as babel_datetime
from babel.numbers import format_currency

#: Babel's named widths; anything else is a date pattern such as `d MMMM y` or `EEEE, HH:mm`.
WIDTHS = ("short", "medium", "long", "full")


def locale_of(value: object, default: str) -> Locale:
    """The customer's `locale` trait (`fr_FR`, `de-DE`, `ja`), else the default."""
    for candidate in (value, default):
        if isinstance(candidate, str) and candidate.strip():
            try:
                return Locale.parse(candidate.strip().replace("-", "_"))
            except (UnknownLocaleError, ValueError, TypeError):
                continue
    return Locale.parse("en_US")


def format_money(amount: object, currency: str, locale: Locale) -> str:
    """`amount` of `currency` (ISO 4217) with the currency's own decimals: yen has none."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        raise ValueError(f"format_money: {amount!r} is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"format_money: {amount!r} is not an amount")
    return format_currency(value, str(currency).upper(), locale=locale)


def _instant(value: object) -> dt.date | dt.datetime:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return (
                dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
                if "T" in value
                else dt.date.fromisoformat(value)
            )
        except ValueError:
            pass
    raise ValueError(f"format_date: {value!r} is not a date or an ISO 8601 instant")


def format_date(value: object, fmt: str, tz: ZoneInfo, locale: Locale) -> str:
    """A date, or an instant as its local date (time too, if `fmt` is a pattern that shows it) in `tz`."""
    when = _instant(value)
    if not isinstance(when, dt.datetime):
        return babel_date(when, fmt, locale=locale)
    local = (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(tz)
    if fmt in WIDTHS:
        return babel_date(local.date(), fmt, locale=locale)
    return babel_datetime(local, fmt, tzinfo=tz, locale=locale)
