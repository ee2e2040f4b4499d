"""Segment's tracking calls mapped onto ingest records, and the client's clock corrected. Pure.

A call (`identify`, `track`, `page`, `screen`, `alias`) becomes a `Call`: the
ingest record it stands for, parsed by the same `parse_data` as a file's line,
and the anonymous id it links to a customer, if any. A call that cannot be
taken raises `RecordError` with the same words ingest uses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from automation.core.records import Record, RecordError, parse_data, parse_instant

KINDS = ("identify", "track", "page", "screen", "alias")
# A client clock further off than this is corrected by this much only.
MAX_CORRECTION = dt.timedelta(days=1)
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST_AHEAD = dt.timedelta(days=1)
# Segment's reserved traits, spelled as ingest spells them.
TRAIT_NAMES = {"firstName": "first_name", "lastName": "last_name", "createdAt": "signed_up_at"}
VIEW_EVENTS = {"page": "page_viewed", "screen": "screen_viewed"}


@dataclass(frozen=True)
class Call:
    """What one tracking call asks for.

    `record` is keyed by the user id, or by the anonymous id when `known` is
    false; `link` is an (anonymous id, user id) pair to attach.
    """

    record: Record | None
    known: bool
    anonymous_id: str | None
    link: tuple[str, str] | None


def _id(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"{name} must be a string")
    if len(value) > 128:
        raise RecordError(f"{name} is longer than 128 characters")
    return value


def corrected_time(item: dict[str, Any], received: dt.datetime) -> tuple[dt.datetime, dt.timedelta]:
    """When the call happened, by Segment's rule, and the correction applied to the client's clock.

    `timestamp` (else `originalTimestamp`, else the time received) is moved by
    `received - sentAt` when `sentAt` is given, bounded by `MAX_CORRECTION`.
    A time before 2000 or more than a day ahead is rejected.
    """
    raw = item.get("timestamp")
    name = "timestamp"
    if raw is None:
        raw, name = item.get("originalTimestamp"), "originalTimestamp"
    stamp = received if raw is None else parse_instant(raw, name)
    correction = dt.timedelta(0)
    if item.get("sentAt") is not None and raw is not None:
        skew = received - parse_instant(item["sentAt"], "sentAt")
        correction = max(-MAX_CORRECTION, min(MAX_CORRECTION, skew))
    at = stamp + correction
    if at < EARLIEST:
        raise RecordError(f"{name} is before 2000")
    if at > received + LATEST_AHEAD:
        raise RecordError(f"{name} is more than a day in the future")
    return at, correction


def _object(item: dict[str, Any], name: str) -> dict[str, Any]:
    value = item.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"{name} must be an object")
    return value


def _traits(traits: dict[str, Any]) -> dict[str, Any]:
    return {TRAIT_NAMES.get(name, name): value for name, value in traits.items()}


def _properties(kind: str, item: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    props = dict(_object(item, "properties"))
    if kind in VIEW_EVENTS:
        for name in ("name", "category"):
            if item.get(name) is not None:
                props[name] = item[name]
    if context:
        props["context"] = context
    return props


def parse_call(
    kind: str,
    item: Any,
    received: dt.datetime,
    batch_context: dict[str, Any] | None = None,
    plain: bool = False,
) -> Call:
    """One tracking call to a `Call`; `batch_context` is a batch's top-level context.

    `plain`: the call and the context need no walk for unstorable values (`parse_data`).
    """
    if kind == "group":
        raise RecordError("group calls are not supported")
    if kind not in KINDS:
        raise RecordError("type must be identify, track, page, screen or alias")
    if not isinstance(item, dict):
        raise RecordError("a call must be a JSON object")
    user_id = _id(item, "userId")
    if kind == "alias":
        previous = _id(item, "previousId")
        if user_id is None or previous is None:
            raise RecordError("alias needs userId and previousId")
        return Call(None, True, None, (previous, user_id))
    anonymous_id = _id(item, "anonymousId")
    cid = user_id or anonymous_id
    if cid is None:
        raise RecordError("missing userId or anonymousId")
    at, correction = corrected_time(item, received)
    context = {**(batch_context or {}), **_object(item, "context")}
    if correction:
        context["clock_correction_ms"] = int(correction / dt.timedelta(milliseconds=1))
    data: dict[str, Any] = {"customer_id": cid, "timestamp": at}
    if kind == "identify":
        # RudderStack's clients send an identify's traits in `context.traits` only.
        known = {**_object(context, "traits"), **_object(item, "traits")}
        data.update(type="identify", traits=_traits(known))
    else:
        props = _properties(kind, item, context)
        event = VIEW_EVENTS.get(kind, item.get("event"))
        data.update(type="track", event=event, properties=props)
        if props.get("event_id") not in (None, ""):
            data["event_id"] = props["event_id"]
        elif isinstance(item.get("messageId"), str) and item["messageId"]:
            data["event_id"] = item["messageId"]
    link = (anonymous_id, user_id) if kind == "identify" and anonymous_id and user_id else None
    return Call(parse_data(data, received, plain), user_id is not None, anonymous_id, link)
