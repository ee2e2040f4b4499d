"""Ingest records (identify / track) and the pure rules for merging traits.

A line of JSON becomes an `Identify` or a `Track`, or a one-line reason why
not: whatever the line holds (deep nesting, huge numbers, out-of-range dates,
lone surrogates, control characters in an address) is a `RecordError`, never
another exception, so one hostile line never stops an ingest. Merging respects
per-trait timestamps so that an older identify never overwrites a newer trait.
Pure.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import parser as dateparser

from automation.core import addresses
from automation.core.topics import TOPIC_ID

WELL_KNOWN = (
    "email",
    "phone",
    "timezone",
    "first_name",
    "last_name",
    "tier",
    "signed_up_at",
    "birthday",
    "email_opt_in",
    "sms_opt_in",
)


#: Nesting deeper than any real record; `json` itself would recurse until it fails.
MAX_DEPTH = 32
#: Order totals must fit the lifetime value column (numeric(14, 2)).
MAX_TOTAL = Decimal(10) ** 12
#: Unicode categories never allowed in an address, a name or an id (controls, line breaks).
CONTROLS = frozenset({"Cc", "Zl", "Zp"})
#: Traits printed on screens and put into message headers.
PLAIN_TEXT = ("email", "phone", "timezone", "first_name", "last_name", "tier")


class RecordError(ValueError):
    """Why a line was rejected (no PII in the message)."""


def has_controls(text: str) -> bool:
    """True when text holds a control character or a line break (CR, LF, U+2028...)."""
    return not text.isprintable() and any(unicodedata.category(ch) in CONTROLS for ch in text)


def _refuse_constant(name: str) -> float:
    raise RecordError(f"{name} is not a number JSON allows")


#: Built once: `json.loads` with an argument builds a decoder per call, a third of the parse.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _load_json(line: str) -> Any:
    try:
        return _DECODER.decode(line)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not JSON ({exc.msg})") from None
    except RecursionError:
        raise RecordError(f"nested deeper than {MAX_DEPTH} levels") from None
    except RecordError:
        raise
    except ValueError:
        # int() refuses more than sys.get_int_max_str_digits() digits (4,300 by default).
        raise RecordError("a number has too many digits") from None


def _check_values(data: Any) -> None:
    """Refuse what no database stores: nesting past MAX_DEPTH, NUL, lone surrogates."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise RecordError("a text value holds a NUL character")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise RecordError("a text value holds a lone surrogate (invalid Unicode)") from None
            continue
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise RecordError(f"nested deeper than {MAX_DEPTH} levels")
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)


def parse_instant(value: Any, what: str) -> dt.datetime:
    """ISO 8601 to an aware UTC datetime; a date alone means midnight UTC.

    An aware datetime is taken as it is: a tracking call's time, parsed and corrected
    already (`core.segment`), is not written out as text to be parsed again.
    """
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"{what} must be an ISO 8601 string")
    try:
        # The standard library parses the common forms several times faster.
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = dateparser.isoparse(value)
        except (ValueError, OverflowError):
            raise RecordError(f"{what} is not ISO 8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        raise RecordError(f"{what} is out of range once converted to UTC") from None


def parse_date(value: Any, what: str) -> dt.date:
    if not isinstance(value, str):
        raise RecordError(f"{what} must be a date string YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise RecordError(f"{what} is not a date YYYY-MM-DD") from None


@dataclass(frozen=True)
class Identify:
    customer_id: str
    traits: dict[str, Any]
    timestamp: dt.datetime
    #: What was accepted with a fix (an unknown time zone lands as the default zone).
    warnings: tuple[str, ...] = ()
    #: The `topics` trait: choices in subscription topics, recorded at `timestamp`.
    topics: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Track:
    customer_id: str
    event: str
    event_key: str
    timestamp: dt.datetime
    properties: dict[str, Any] = field(default_factory=dict)

    def row(self, received_at: dt.datetime) -> dict[str, Any]:
        """Its row of an events table (without the owner: a customer's or a visitor's id)."""
        return {
            "event_key": self.event_key,
            "name": self.event,
            "occurred_at": self.timestamp,
            "properties": self.properties,
            "received_at": received_at,
        }


Record = Identify | Track


def _customer_id(data: dict[str, Any]) -> str:
    cid = data.get("customer_id")
    if isinstance(cid, int) and not isinstance(cid, bool):
        cid = str(cid)
    if not isinstance(cid, str) or not cid.strip():
        raise RecordError("missing customer_id")
    if len(cid) > 128:
        raise RecordError("customer_id is longer than 128 characters")
    if has_controls(cid):
        raise RecordError("customer_id holds a control character")
    return cid


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    """Cached: ZoneInfo's own cache keeps only a few zones, so a mix of 30 re-reads files."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _normalise_traits(traits: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The traits in their normal form, and a warning for each value replaced rather than refused."""
    out = dict(traits)
    warnings: tuple[str, ...] = ()
    for name in PLAIN_TEXT:
        value = out.get(name)
        if isinstance(value, str) and has_controls(value):
            raise RecordError(f"traits.{name} holds a control character or a line break")
    if "email" in out and out["email"] is not None:
        try:
            out["email"] = addresses.normal_email(out["email"] if isinstance(out["email"], str) else "")
        except addresses.AddressError:
            raise RecordError("traits.email is not an email address") from None
    if "phone" in out and out["phone"] is not None:
        try:
            out["phone"] = addresses.normal_phone(str(out["phone"]))
        except addresses.AddressError:
            raise RecordError(f"traits.phone must be {addresses.PHONE_FORM}") from None
    if out.get("timezone") is not None and not _known_zone(str(out["timezone"])):
        out["timezone"] = None
        warnings = ("traits.timezone is not an IANA time zone; the customer gets the default zone",)
    if out.get("signed_up_at") is not None:
        out["signed_up_at"] = parse_instant(out["signed_up_at"], "traits.signed_up_at")
    if out.get("birthday") is not None:
        out["birthday"] = parse_date(out["birthday"], "traits.birthday")
    for flag in ("email_opt_in", "sms_opt_in"):
        if flag in out and not isinstance(out[flag], bool):
            raise RecordError(f"traits.{flag} must be true or false")
    if out.get("tier") is not None:
        out["tier"] = str(out["tier"]).strip().lower()
    return out, warnings


def may_hold_unstorable(line: str | bytes, enclosing: int = 0) -> bool:
    """Whether the values of a JSON text (or its UTF-8 bytes) need the walk of `_check_values`.

    JSON text can only produce a NUL or a lone surrogate through a `\\u` escape (or carry a
    surrogate in the text itself), and only nest as deep as it has brackets (plus the
    `enclosing` levels it will be put in); most lines have neither, and skip the walk,
    which would double the cost of parsing.
    """
    if isinstance(line, bytes):
        escaped, brackets = b"\\u" in line, line.count(b"{") + line.count(b"[")
    else:
        escaped, brackets = "\\u" in line, line.count("{") + line.count("[")
    if escaped or brackets + enclosing > MAX_DEPTH:
        return True
    try:
        line.decode("utf-8") if isinstance(line, bytes) else line.encode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return True
    return False


def parse_record(line: str, now: dt.datetime) -> Record:
    """One JSON line to a record; raises RecordError with the reason."""
    data = _load_json(line)
    if isinstance(data, dict) and may_hold_unstorable(line):
        _check_values(data)
    return _record(data, now)


def parse_data(data: Any, now: dt.datetime, plain: bool = False) -> Record:
    """One decoded record (a tracking call mapped to this shape) to a record; checked as a line is.

    `plain`: the caller found with `may_hold_unstorable` that the values need no walk.
    """
    if isinstance(data, dict) and not plain:
        _check_values(data)
    return _record(data, now)


def _topic_choices(value: Any) -> dict[str, bool]:
    """The `topics` trait, `{topic id: true|false}`."""
    if not isinstance(value, dict):
        raise RecordError("traits.topics must be an object of topic ids to true or false")
    for topic, yes in value.items():
        if not re.fullmatch(TOPIC_ID, topic) or len(topic) > 64:
            raise RecordError("traits.topics: a topic id is lower-case letters, digits, _ and -")
        if not isinstance(yes, bool):
            raise RecordError(f"traits.topics.{topic} must be true or false")
    return dict(value)


def _record(data: Any, now: dt.datetime) -> Record:
    """A record from checked JSON values.

    A track's amount (`total`, else `value`, else `revenue`: numeric properties in the
    tracking convention) is checked here, so that a bad one is reported with its line
    instead of counting as nothing in the order facts.
    """
    if not isinstance(data, dict):
        raise RecordError("a record must be a JSON object")
    kind = data.get("type")
    cid = _customer_id(data)
    ts = data.get("timestamp")
    if kind == "identify":
        traits = data.get("traits", {})
        if not isinstance(traits, dict):
            raise RecordError("traits must be an object")
        stamp = parse_instant(ts, "timestamp") if ts is not None else now
        choices = _topic_choices(traits.get("topics", {}))
        normal, warnings = _normalise_traits({k: v for k, v in traits.items() if k != "topics"})
        return Identify(cid, normal, stamp, warnings, choices)
    if kind == "track":
        name = data.get("event")
        if not isinstance(name, str) or not name.strip():
            raise RecordError("missing event name")
        if has_controls(name):
            raise RecordError("the event name holds a control character")
        props = data.get("properties", {})
        if not isinstance(props, dict):
            raise RecordError("properties must be an object")
        order_total(props)
        event_id = data.get("event_id")
        key = str(event_id) if event_id not in (None, "") else record_hash(data)
        stamp = parse_instant(ts, "timestamp") if ts is not None else now  # the time of ingest
        return Track(cid, name.strip(), key[:200], stamp, props)
    raise RecordError("type must be 'identify' or 'track'")


def tier_event(customer_id: str, old: str | None, new: str, at: dt.datetime) -> Track:
    """The `tier_changed` event an identify produces; its key makes a replay a no-op."""
    return Track(
        customer_id=customer_id,
        event="tier_changed",
        event_key=f"tier:{customer_id}:{old}:{new}:{at.isoformat()}"[:200],
        timestamp=at,
        properties={"from": old, "to": new},
    )


def _canonical_value(value: Any) -> str:
    """A datetime as ISO 8601, the text the same instant has in a line (so its key is the same)."""
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


def record_hash(data: dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=_canonical_value)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def order_total(properties: dict[str, Any]) -> Decimal:
    """The order's value from `total` (or `value`/`revenue`), 0 when absent.

    Raises RecordError for a value that is not a finite amount the lifetime value can hold.
    """
    for key in ("total", "value", "revenue"):
        if key in properties:
            raw = properties[key]
            try:
                if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                    raise InvalidOperation
                amount = Decimal(str(raw).strip())
                if not amount.is_finite() or abs(amount) >= MAX_TOTAL:
                    raise InvalidOperation
                return amount.quantize(Decimal("0.01"))
            except (InvalidOperation, ValueError):
                raise RecordError(
                    f"properties.{key} must be an amount below {MAX_TOTAL:,} (a number or numeric text)"
                ) from None
    return Decimal(0)


@dataclass
class TraitMerge:
    """The traits that change, their new timestamps, and a tier change if any."""

    changed: dict[str, Any]
    times: dict[str, str]
    tier_change: tuple[str | None, str] | None


def merge_traits(current: dict[str, Any], times: dict[str, str], incoming: Identify) -> TraitMerge:
    """Apply an identify to the current traits, trait by trait, newest wins."""
    stamp = incoming.timestamp.isoformat()
    changed: dict[str, Any] = {}
    new_times = dict(times)
    tier_change = None
    for name, value in incoming.traits.items():
        seen = times.get(name)
        if seen is not None and seen > stamp:
            continue
        new_times[name] = stamp
        if current.get(name) != value:
            changed[name] = value
            if name == "tier" and value is not None:
                old = current.get("tier")
                if old is not None:
                    tier_change = (old, value)
    return TraitMerge(changed, new_times, tier_change)


def month_day(value: dt.date | dt.datetime | None) -> int | None:
    if value is None:
        return None
    return value.month * 100 + value.day
