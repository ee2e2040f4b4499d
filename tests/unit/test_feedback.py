"""The pure mapping of provider events onto delivery state, with a fixed `now`."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from automation.core import feedback
from automation.core.feedback import (
    MalformedEvent,
    keyword,
    sendgrid_event,
    supersedes,
    twilio_inbound,
    twilio_status,
)

T0 = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=1)


@pytest.mark.parametrize(
    ("new", "new_at", "current", "current_at", "replaces"),
    [
        ("processed", T0, None, None, True),
        ("delivered", T1, "processed", T0, True),
        ("processed", T1, "delivered", T0, False),  # late and lower
        ("deferred", T1, "delivered", T0, False),
        ("delivered", T1, "deferred", T0, True),
        ("delivered", T1, "bounced", T0, False),  # a late delivered never overwrites a bounce
        ("bounced", T1, "delivered", T0, True),  # an async bounce after delivery wins
        ("dropped", T0, "bounced", T1, False),  # equal rank: the later one stays
        ("deferred", T1, "deferred", T0, True),  # equal rank, later
        ("delivered", T1, "undelivered", T0, False),
        ("failed", T1, "sent", T0, True),
        ("sent", T1, "queued", T0, True),
        ("queued", T1, "sent", T0, False),
    ],
)
def test_status_precedence(
    new: str, new_at: dt.datetime, current: str | None, current_at: dt.datetime | None, replaces: bool
) -> None:
    assert supersedes(new, new_at, current, current_at) is replaces


def sg(kind: str, **extra: Any) -> dict[str, Any]:
    return {"event": kind, "sg_event_id": "e1", "timestamp": int(T0.timestamp()), "email": "A@x.io", **extra}


@pytest.mark.parametrize(
    ("raw", "status", "suppress", "opened", "clicked"),
    [
        (sg("processed"), "processed", None, False, False),
        (sg("delivered"), "delivered", None, False, False),
        (sg("deferred"), "deferred", None, False, False),
        (sg("bounce", type="bounce"), "bounced", "bounce", False, False),
        (sg("bounce"), "bounced", "bounce", False, False),
        (sg("bounce", type="blocked"), "blocked", None, False, False),
        (sg("dropped", reason="Invalid"), "dropped", "invalid", False, False),
        (sg("dropped", reason="Unsubscribed Address"), "dropped", "unsubscribe", False, False),
        (sg("dropped", reason="Spam Reporting Address"), "dropped", "spamreport", False, False),
        (sg("dropped", reason="Invalid SMTPAPI header"), "dropped", None, False, False),
        (sg("open"), None, None, True, False),
        (sg("click", url="https://x"), None, None, False, True),
        (sg("spamreport"), None, "spamreport", False, False),
        (sg("unsubscribe"), None, "unsubscribe", False, False),
        (sg("group_unsubscribe"), None, "group_unsubscribe", False, False),
        (sg("group_resubscribe"), None, None, False, False),
    ],
)
def test_sendgrid_events(
    raw: dict[str, Any], status: str | None, suppress: str | None, opened: bool, clicked: bool
) -> None:
    f = sendgrid_event({**raw, "delivery_id": "42"}, 0)
    assert (f.status, f.suppress, f.opened, f.clicked) == (status, suppress, opened, clicked)
    assert f.delivery_id == 42 and f.event_key == "sendgrid:e1" and f.occurred_at == T0
    assert f.address == "A@x.io" and "email" not in f.payload and "url" not in f.payload


def test_group_resubscribe_lifts_only_a_group_unsubscribe() -> None:
    assert sendgrid_event(sg("group_resubscribe"), 0).unsuppress == "group_unsubscribe"
    assert sendgrid_event(sg("delivered"), 0).unsuppress is None


@pytest.mark.parametrize(
    ("value", "expected"), [("42", 42), (" 7 ", 7), (None, None), ("x", None), ("²", None), ("9" * 19, None)]
)
def test_delivery_id(value: str | None, expected: int | None) -> None:
    assert feedback.delivery_id(value) == expected


def test_sendgrid_event_ids_and_unknown_types() -> None:
    f = sendgrid_event(sg("machine_opened", sg_message_id="abc.filter1", delivery_id="x"), 3)
    assert f.event_type == "other" and f.status is None and f.delivery_id is None
    assert f.provider_message_id == "abc"


@pytest.mark.parametrize(
    "raw",
    [
        "not an object",
        {"sg_event_id": "e1", "timestamp": 1},
        {"event": "open", "timestamp": 1},
        {"event": "open", "sg_event_id": "e1"},
        {"event": "open", "sg_event_id": "e1", "timestamp": "1"},
        {"event": "open", "sg_event_id": "e1", "timestamp": True},
        {"event": "open", "sg_event_id": "e1", "timestamp": 1e20},
        {"event": "open", "sg_event_id": "e1", "timestamp": 1, "email": 5},
        {"event": "open", "sg_event_id": "x" * 181, "timestamp": 1},
    ],
)
def test_malformed_sendgrid_events(raw: Any) -> None:
    with pytest.raises(MalformedEvent):
        sendgrid_event(raw, 0)


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"reason": "a\x00b"}, "event 4: text holds a NUL or an unpaired surrogate"),
        ({"a\x00": 1}, "event 4: text holds a NUL or an unpaired surrogate"),
        ({"reason": ["ok", {"k": "\udc80"}]}, "event 4: text holds a NUL or an unpaired surrogate"),
        ({"score": float("inf")}, "event 4: a number is not finite"),
        ({"score": [float("nan")]}, "event 4: a number is not finite"),
        ({"category": nested(31)}, "event 4: nested deeper than 32 levels"),
        ({"email": "a" * 321}, "event 4: email is longer than 320 characters"),
    ],
)
def test_events_the_database_could_not_store_are_malformed(extra: dict[str, Any], reason: str) -> None:
    with pytest.raises(MalformedEvent, match=f"^{reason}$"):
        sendgrid_event(sg("open", **extra), 4)


def test_events_within_the_storage_bounds_pass() -> None:
    f = sendgrid_event(sg("open", category=nested(30), reason="\u00e9\U0001f600", email="a" * 320), 0)
    assert f.payload["category"] == nested(30) and f.address == "a" * 320


def test_twilio_status_mapping() -> None:
    params = {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "21610", "To": "+1555"}
    f = twilio_status(params, 7, T0)
    assert (f.status, f.suppress, f.address, f.delivery_id) == ("undelivered", "stop", "+1555", 7)
    assert f.event_key == "twilio:SM1:undelivered" and f.channel == "sms"
    assert twilio_status({**params, "ErrorCode": "30003"}, 7, T0).suppress is None
    assert twilio_status({**params, "MessageStatus": "read", "ErrorCode": ""}, 7, T0).status == "delivered"
    for bad in (
        {"MessageStatus": "sent"},
        {**params, "MessageStatus": "exploded"},
        {**params, "ErrorCode": "x"},
        {**params, "ErrorCode": "²"},
        {**params, "ErrorCode": "9" * 5000},
        {**params, "MessageSid": "SM\x00"},
        {**params, "MessageSid": "S" * 65},
        {**params, "To": "+1" * 200},
    ):
        with pytest.raises(MalformedEvent):
            twilio_status(bad, None, T0)


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ("STOP", "stop"),
        ("  stop\n", "stop"),
        ("StopAll", "stop"),
        ("unsubscribe", "stop"),
        ("cancel", "stop"),
        ("End", "stop"),
        ("quit", "stop"),
        ("optout", "stop"),
        ("Revoke", "stop"),
        ("start", "start"),
        ("Unstop", "start"),
        ("yes", "start"),
        ("stop please", None),
        ("", None),
        ("hello", None),
    ],
)
def test_inbound_keywords(body: str, word: str | None) -> None:
    assert keyword(body) == word
    f = twilio_inbound({"MessageSid": "SM9", "From": "+1555", "Body": body}, T0)
    assert f.suppress == ("stop" if word == "stop" else None)
    assert f.unsuppress == ("stop" if word == "start" else None)


def test_feedback_module_is_pure() -> None:
    tree = ast.parse(Path(feedback.__file__).read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"__future__", "collections.abc", "datetime", "dataclasses", "math", "re", "typing"}
