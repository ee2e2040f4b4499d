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

SENDGRID_TYPES = frozenset(
    {
        "processed",
        "delivered",
        "deferred",
        "bounce",
        "dropped",
        "open",
        "click",
        "spamreport",
        "unsubscribe",
        "group_unsubscribe",
        "group_resubscribe",
    }
)

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


def sendgrid_event(raw: Any, index: int) -> Feedback:
    """One element of a SendGrid Event Webhook batch."""
    what = f"event {index}"
    if not isinstance(raw, dict):
        raise MalformedEvent(f"{what}: not an object")
    kind, key = raw.get("event"), raw.get("sg_event_id")
    if not isinstance(kind, str) or not kind:
        raise MalformedEvent(f"{what}: no event type")
    if not isinstance(key, str) or not key or len(key) > 180:
        raise MalformedEvent(f"{what}: no sg_event_id")
    email = raw.get("email")
    if email is not None and not isinstance(email, str):
        raise MalformedEvent(f"{what}: email is not a string")
    occurred_at = _epoch(raw.get("timestamp"), what)
    status: str | None = None
    suppress: str | None = None
    if kind in ("processed", "delivered", "deferred"):
        status = kind
    elif kind == "bounce":
        blocked = raw.get("type") == "blocked"
        status = "blocked" if blocked else "bounced"
        suppress = None if blocked else "bounce"
    elif kind == "dropped":
        status = "dropped"
        suppress = DROPPED_SUPPRESS.get(str(raw.get("reason") or "").strip().lower())
    elif kind in ("spamreport", "unsubscribe", "group_unsubscribe"):
        suppress = kind
    unsuppress = "group_unsubscribe" if kind == "group_resubscribe" else None
    message_id = raw.get("sg_message_id")
    return Feedback(
        provider="sendgrid",
        event_key=f"sendgrid:{key}",
        event_type=kind if kind in SENDGRID_TYPES else "other",
        occurred_at=occurred_at,
        delivery_id=delivery_id(raw.get("delivery_id")),
        provider_message_id=message_id.split(".")[0] if isinstance(message_id, str) else None,
        channel="email",
        address=email.strip() if email else None,
        status=status,
        opened=kind == "open",
        clicked=kind == "click",
        suppress=suppress if email else None,
        unsuppress=unsuppress if email else None,
        payload=_without_pii(raw),
    )


def _without_pii(raw: dict[str, Any]) -> dict[str, Any]:
    """What we keep of an event: ids, type, reason; not the address or the client's IP."""
    drop = {"email", "ip", "useragent", "url", "To", "From", "Body"}
    return {k: v for k, v in raw.items() if k not in drop}


def twilio_status(params: dict[str, str], delivery_id: int | None, received_at: dt.datetime) -> Feedback:
    """A Twilio message status callback (form parameters as posted)."""
    sid, status = params.get("MessageSid") or params.get("SmsSid"), params.get("MessageStatus")
    if not sid or not status:
        raise MalformedEvent("MessageSid and MessageStatus are required")
    status = status.strip().lower()
    if status not in TWILIO_STATUSES:
        raise MalformedEvent(f"unknown MessageStatus {status!r}")
    code_text = (params.get("ErrorCode") or "").strip()
    if code_text and not code_text.isdigit():
        raise MalformedEvent("ErrorCode is not a number")
    code = int(code_text) if code_text else None
    to = (params.get("To") or "").strip() or None
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
    sid, sender = params.get("MessageSid") or params.get("SmsSid"), (params.get("From") or "").strip()
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
