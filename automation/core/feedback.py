"""Provider feedback onto delivery state: pure mapping of webhook events.

A SendGrid event or a Twilio callback becomes one `Feedback`: the delivery it
concerns, the delivery status it implies, the engagement it records (open,
click) and the suppression it calls for. Nothing here touches the database or
the clock; `automation.web` stores and applies the result.

Events arrive more than once and out of order, so a status only replaces the
current one when it ranks higher (`supersedes`): a late `delivered` never
overwrites a `bounced`, a late `processed` never overwrites a `delivered`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# How far along a message is (SendGrid and Twilio statuses); failures are
# final and outrank everything, including a late `delivered`.
RANK = {
    "processed": 0,
    "deferred": 1,
    "delivered": 2,
    "bounced": 3,
    "blocked": 3,
    "dropped": 3,
    "accepted": 0,
    "scheduled": 0,
    "queued": 0,
    "sending": 1,
    "sent": 1,
    "undelivered": 3,
    "failed": 3,
}

# SendGrid `dropped` reasons that mean the address itself must not be mailed.
DROPPED_SUPPRESS = {
    "bounced address": "bounce",
    "invalid": "invalid",
    "spam reporting address": "spamreport",
    "unsubscribed address": "unsubscribe",
}

TWILIO_STATUSES = frozenset(
    {"accepted", "scheduled", "queued", "sending", "sent", "delivered", "undelivered", "failed", "read"}
)
# Twilio error codes that condemn the number, not the message.
TWILIO_SUPPRESS = {21610: "stop", 21211: "invalid", 21614: "invalid"}

# Twilio's default opt-out and opt-in keywords (REVOKE and OPTOUT are recent additions).
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})


class MalformedEvent(ValueError):
    """A webhook payload that is not what the provider documents."""


@dataclass(frozen=True)
class Feedback:
    """One provider event, normalised: what it says about a delivery and an address."""

    provider: str
    event_key: str
    event_type: str
    occurred_at: dt.datetime
    delivery_id: int | None = None
    provider_message_id: str | None = None
    channel: str = "email"
    address: str | None = None
    status: str | None = None
    opened: bool = False
    clicked: bool = False
    suppress: str | None = None
    unsuppress: str | None = None  # lift a suppression held for this reason
    payload: dict[str, Any] = field(default_factory=dict)


def supersedes(new: str, new_at: dt.datetime, current: str | None, current_at: dt.datetime | None) -> bool:
    """True when status `new` (at `new_at`) should replace `current` on a delivery."""
    if current is None:
        return True
    new_rank, current_rank = RANK.get(new, -1), RANK.get(current, -1)
    if new_rank != current_rank:
        return new_rank > current_rank
    return current_at is None or new_at > current_at


def delivery_id(value: Any) -> int | None:
    """A delivery id from a custom arg or query parameter; None unless plain digits that fit."""
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _epoch(value: Any, what: str) -> dt.datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedEvent(f"{what}: timestamp must be a number of seconds")
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedEvent(f"{what}: timestamp out of range") from None


# What each SendGrid event type means for the delivery and the address:
# (delivery status or None, suppression reason or None).
Effect = tuple[str | None, str | None]


def _status(status: str) -> Callable[[dict[str, Any]], Effect]:
    return lambda _raw: (status, None)


def _suppression(reason: str) -> Callable[[dict[str, Any]], Effect]:
    return lambda _raw: (None, reason)


def _bounce(raw: dict[str, Any]) -> Effect:
    """A block is about this message (a policy, a full mailbox); a bounce condemns the address."""
    return ("blocked", None) if raw.get("type") == "blocked" else ("bounced", "bounce")


def _dropped(raw: dict[str, Any]) -> Effect:
    return "dropped", DROPPED_SUPPRESS.get(str(raw.get("reason") or "").strip().lower())


def _no_effect(_raw: dict[str, Any]) -> Effect:
    return None, None


SENDGRID_EFFECTS: dict[str, Callable[[dict[str, Any]], Effect]] = {
    "processed": _status("processed"),
    "delivered": _status("delivered"),
    "deferred": _status("deferred"),
    "bounce": _bounce,
    "dropped": _dropped,
    "spamreport": _suppression("spamreport"),
    "unsubscribe": _suppression("unsubscribe"),
    "group_unsubscribe": _suppression("group_unsubscribe"),
    "open": _no_effect,
    "click": _no_effect,
    "group_resubscribe": _no_effect,
}

# Bounds on what an event may hold, so that every event we accept can be stored
# by PostgreSQL and SQLite alike: text without NUL or unpaired surrogates,
# finite numbers, modest nesting, and an address that fits its column.
MAX_DEPTH = 32
MAX_ADDRESS = 320
MAX_SID = 64
_UNPAIRED = re.compile("[\ud800-\udfff]")


def _storable(raw: dict[str, Any], what: str) -> None:
    """Raise `MalformedEvent` unless every value in `raw` can be stored as it is."""
    pending: list[tuple[Any, int]] = [(raw, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise MalformedEvent(f"{what}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            pending.extend((k, depth) for k in value)
            pending.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            pending.extend((v, depth + 1) for v in value)
        elif isinstance(value, str) and ("\x00" in value or _UNPAIRED.search(value)):
            raise MalformedEvent(f"{what}: text holds a NUL or an unpaired surrogate")
        elif isinstance(value, float) and not math.isfinite(value):
            raise MalformedEvent(f"{what}: a number is not finite")


def _fields(raw: Any, what: str) -> tuple[str, str, str | None]:
    """The event type, SendGrid's event id and the address, checked."""
    if not isinstance(raw, dict):
        raise MalformedEvent(f"{what}: not an object")
    kind, key, email = raw.get("event"), raw.get("sg_event_id"), raw.get("email")
    if not isinstance(kind, str) or not kind:
        raise MalformedEvent(f"{what}: no event type")
    if not isinstance(key, str) or not key or len(key) > 180:
        raise MalformedEvent(f"{what}: no sg_event_id")
    if email is not None and not isinstance(email, str):
        raise MalformedEvent(f"{what}: email is not a string")
    if email is not None and len(email) > MAX_ADDRESS:
        raise MalformedEvent(f"{what}: email is longer than {MAX_ADDRESS} characters")
    _storable(raw, what)
    return kind, key, email.strip() if email else None


def sendgrid_event(raw: Any, index: int) -> Feedback:
    """One element of a SendGrid Event Webhook batch."""
    what = f"event {index}"
    kind, key, email = _fields(raw, what)
    occurred_at = _epoch(raw.get("timestamp"), what)
    status, suppress = SENDGRID_EFFECTS.get(kind, _no_effect)(raw)
    message_id = raw.get("sg_message_id")
    return Feedback(
        provider="sendgrid",
        event_key=f"sendgrid:{key}",
        event_type=kind if kind in SENDGRID_EFFECTS else "other",
        occurred_at=occurred_at,
        delivery_id=delivery_id(raw.get("delivery_id")),
        provider_message_id=message_id.split(".")[0] if isinstance(message_id, str) else None,
        channel="email",
        address=email,
        status=status,
        opened=kind == "open",
        clicked=kind == "click",
        suppress=suppress if email else None,
        unsuppress="group_unsubscribe" if kind == "group_resubscribe" and email else None,
        payload=_without_pii(raw),
    )


def _without_pii(raw: dict[str, Any]) -> dict[str, Any]:
    """What we keep of an event: ids, type, reason; not the address or the client's IP."""
    drop = {"email", "ip", "useragent", "url", "To", "From", "Body"}
    return {k: v for k, v in raw.items() if k not in drop}


def _twilio_fields(params: dict[str, str], address_key: str) -> tuple[str | None, str | None]:
    """The message sid and the address of a Twilio post (what we store of it), checked."""
    sid = params.get("MessageSid") or params.get("SmsSid")
    address = (params.get(address_key) or "").strip() or None
    _storable({"sid": sid, "address": address}, "form")
    if sid is not None and len(sid) > MAX_SID:
        raise MalformedEvent(f"MessageSid is longer than {MAX_SID} characters")
    if address is not None and len(address) > MAX_ADDRESS:
        raise MalformedEvent(f"{address_key} is longer than {MAX_ADDRESS} characters")
    return sid, address


def twilio_status(params: dict[str, str], delivery_id: int | None, received_at: dt.datetime) -> Feedback:
    """A Twilio message status callback (form parameters as posted)."""
    sid, to = _twilio_fields(params, "To")
    status = params.get("MessageStatus")
    if not sid or not status:
        raise MalformedEvent("MessageSid and MessageStatus are required")
    status = status.strip().lower()
    if status not in TWILIO_STATUSES:
        raise MalformedEvent("unknown MessageStatus")
    code_text = (params.get("ErrorCode") or "").strip()
    if code_text and not (code_text.isascii() and code_text.isdigit() and len(code_text) <= 9):
        raise MalformedEvent("ErrorCode is not a number")
    code = int(code_text) if code_text else None
    suppress = TWILIO_SUPPRESS.get(code) if code is not None and to else None
    return Feedback(
        provider="twilio",
        event_key=f"twilio:{sid}:{status}",
        event_type=status,
        occurred_at=received_at,
        delivery_id=delivery_id,
        provider_message_id=sid,
        channel="sms",
        address=to,
        status="delivered" if status == "read" else status,
        suppress=suppress,
        payload={"MessageSid": sid, "MessageStatus": status, "ErrorCode": code},
    )


def keyword(body: str) -> str | None:
    """`stop`, `start` or None for an inbound SMS body (trimmed, any case)."""
    word = body.strip().upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    return None


def twilio_inbound(params: dict[str, str], received_at: dt.datetime) -> Feedback:
    """An inbound SMS: a STOP word suppresses the sender, a START word lifts it."""
    sid, sender = _twilio_fields(params, "From")
    if not sid or not sender:
        raise MalformedEvent("MessageSid and From are required")
    word = keyword(params.get("Body") or "")
    return Feedback(
        provider="twilio",
        event_key=f"twilio-inbound:{sid}",
        event_type=f"inbound_{word}" if word else "inbound",
        occurred_at=received_at,
        provider_message_id=sid,
        channel="sms",
        address=sender,
        suppress="stop" if word == "stop" else None,
        unsuppress="stop" if word == "start" else None,
        payload={"MessageSid": sid, "keyword": word},
    )
