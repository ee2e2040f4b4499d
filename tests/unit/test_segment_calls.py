"""Segment tracking calls mapped onto ingest records: ids, times, keys, names, refusals."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from automation.core.records import Identify, RecordError, Track, parse_record
from automation.core.segment import parse_call

RECEIVED = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def test_a_track_is_keyed_by_its_message_id_and_its_user_id_is_the_customer() -> None:
    call = parse_call(
        "track",
        {"userId": "c1", "event": "order_placed", "messageId": "m-1", "properties": {"total": 5}},
        RECEIVED,
    )
    assert call.known and call.link is None
    assert call.record == Track("c1", "order_placed", "m-1", RECEIVED, {"total": 5})


def test_an_event_id_property_wins_over_the_message_id() -> None:
    call = parse_call(
        "track",
        {"userId": "c1", "event": "e", "messageId": "m-1", "properties": {"event_id": "o-9"}},
        RECEIVED,
    )
    assert isinstance(call.record, Track) and call.record.event_key == "o-9"


def test_a_call_without_a_message_id_is_keyed_as_the_same_line_of_a_file() -> None:
    """The call's time reaches the record as a datetime, yet its key hashes the ISO 8601 text."""
    item = {"userId": "c1", "event": "e", "timestamp": "2026-11-22T11:00:00+00:00"}
    call = parse_call("track", item, RECEIVED)
    line = '{"customer_id": "c1", "timestamp": "2026-11-22T11:00:00+00:00", "type": "track", '
    line += '"event": "e", "properties": {}}'
    assert isinstance(call.record, Track)
    assert call.record == parse_record(line, RECEIVED)


def test_the_client_clock_is_corrected_by_the_difference_between_sent_at_and_received() -> None:
    item = {
        "userId": "c1",
        "event": "e",
        "timestamp": "2026-11-22T11:00:00Z",
        "sentAt": "2026-11-22T11:30:00Z",
    }
    call = parse_call("track", item, RECEIVED)
    assert isinstance(call.record, Track)
    assert call.record.timestamp == dt.datetime(2026, 11, 22, 11, 30, tzinfo=dt.UTC)
    assert call.record.properties["context"] == {"clock_correction_ms": 30 * 60 * 1000}


def test_the_correction_is_bounded_to_a_day() -> None:
    item = {
        "userId": "c1",
        "event": "e",
        "timestamp": "2026-11-10T12:00:00Z",
        "sentAt": "2026-11-10T12:00:00Z",
    }
    call = parse_call("track", item, RECEIVED)
    assert isinstance(call.record, Track)
    assert call.record.timestamp == dt.datetime(2026, 11, 11, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [
        ("1999-12-31T23:59:59Z", "timestamp is before 2000"),
        ("2026-11-23T12:00:01Z", "timestamp is more than a day in the future"),
        ("yesterday", "timestamp is not ISO 8601"),
    ],
)
def test_a_time_out_of_bounds_is_rejected(stamp: str, reason: str) -> None:
    with pytest.raises(RecordError, match=re.escape(reason)):
        parse_call("track", {"userId": "c1", "event": "e", "timestamp": stamp}, RECEIVED)


def test_without_a_timestamp_the_original_timestamp_then_the_time_received_is_used() -> None:
    original = parse_call(
        "track", {"userId": "c", "event": "e", "originalTimestamp": "2026-11-22T10:00:00Z"}, RECEIVED
    )
    bare = parse_call("track", {"userId": "c", "event": "e"}, RECEIVED)
    assert isinstance(original.record, Track) and isinstance(bare.record, Track)
    assert original.record.timestamp == dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC)
    assert bare.record.timestamp == RECEIVED


def test_page_and_screen_become_view_events_with_their_name() -> None:
    page = parse_call("page", {"userId": "c", "name": "Pricing", "properties": {"url": "/p"}}, RECEIVED)
    screen = parse_call("screen", {"userId": "c", "name": "Home"}, RECEIVED)
    assert isinstance(page.record, Track) and isinstance(screen.record, Track)
    assert (page.record.event, page.record.properties) == ("page_viewed", {"url": "/p", "name": "Pricing"})
    assert (screen.record.event, screen.record.properties) == ("screen_viewed", {"name": "Home"})


def test_segment_trait_names_map_onto_ingest_traits_with_its_checks() -> None:
    call = parse_call(
        "identify",
        {
            "userId": "c",
            "traits": {"firstName": "Ada", "email": " A@X.IO ", "createdAt": "2026-01-01T00:00:00Z"},
        },
        RECEIVED,
    )
    assert isinstance(call.record, Identify)
    assert call.record.traits == {
        "first_name": "Ada",
        "email": "a@x.io",
        "signed_up_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    }
    with pytest.raises(RecordError, match=re.escape("traits.email is not an email address")):
        parse_call("identify", {"userId": "c", "traits": {"email": "nope"}}, RECEIVED)


def test_a_batch_context_merges_under_the_calls_own() -> None:
    call = parse_call(
        "track",
        {"userId": "c", "event": "e", "context": {"locale": "fr"}},
        RECEIVED,
        {"locale": "en", "library": {"name": "x"}},
    )
    assert isinstance(call.record, Track)
    assert call.record.properties["context"] == {"locale": "fr", "library": {"name": "x"}}


def test_an_identify_with_both_ids_links_them_and_alias_links_the_previous_id() -> None:
    identify = parse_call("identify", {"userId": "c", "anonymousId": "a"}, RECEIVED)
    alias = parse_call("alias", {"userId": "c", "previousId": "a2"}, RECEIVED)
    anonymous = parse_call("track", {"anonymousId": "a", "event": "e"}, RECEIVED)
    assert identify.link == ("a", "c") and alias.link == ("a2", "c") and alias.record is None
    assert not anonymous.known and anonymous.record is not None and anonymous.record.customer_id == "a"


@pytest.mark.parametrize(
    ("kind", "item", "reason"),
    [
        ("group", {"userId": "c", "groupId": "g"}, "group calls are not supported"),
        ("track", {"event": "e"}, "missing userId or anonymousId"),
        ("track", {"userId": "c"}, "missing event name"),
        ("track", {"userId": "c", "event": "e", "properties": []}, "properties must be an object"),
        ("alias", {"userId": "c"}, "alias needs userId and previousId"),
        ("boom", {"userId": "c"}, "type must be identify, track, page, screen or alias"),
        ("track", ["no"], "a call must be a JSON object"),
        ("track", {"userId": "x" * 129, "event": "e"}, "userId is longer than 128 characters"),
    ],
)
def test_a_call_that_cannot_be_taken_says_why(kind: str, item: object, reason: str) -> None:
    with pytest.raises(RecordError, match=re.escape(reason)):
        parse_call(kind, item, RECEIVED)


def test_identify_traits_may_come_in_the_context_as_rudderstack_sends_them() -> None:
    call = parse_call(
        "identify",
        {
            "userId": "c",
            "traits": {"tier": "Gold"},
            "context": {"traits": {"tier": "x", "first_name": "Ada"}},
        },
        RECEIVED,
    )
    assert isinstance(call.record, Identify) and call.record.traits == {"tier": "gold", "first_name": "Ada"}
