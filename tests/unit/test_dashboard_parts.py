"""The dashboard's pure parts: the flow drawn from a journey, cursors, masking, ledger filters."""

from __future__ import annotations

import datetime as dt

from automation.core.journeys import Journey
from automation.web.dashboard.deliveries import parse_filter
from automation.web.dashboard.flow import flow
from automation.web.dashboard.masking import mask, shown
from automation.web.dashboard.paging import Cursor, decode

AT = dt.datetime(2026, 11, 22, 12, 0, 0, 123456, tzinfo=dt.UTC)


def test_a_journey_flow_names_each_step_by_the_id_the_tick_uses() -> None:
    journey = Journey.model_validate(
        {
            "id": "j",
            "name": "J",
            "trigger": "manual",
            "steps": [
                {"send": {"channel": "email", "template": "t"}},
                {"wait": {"until": "09:00"}},
                {
                    "send": {
                        "id": "nudge",
                        "channel": "sms",
                        "template": "s",
                        "if": {"trait": "sms_opt_in", "eq": True},
                    }
                },
            ],
        }
    )
    drawn = flow(journey)
    assert [(n.step_id, n.kind, n.label) for n in drawn] == [
        ("step-1", "send", "send email: t"),
        ("step-2", "wait", "wait until 09:00 local"),
        ("nudge", "send", "send sms: s"),
    ]
    assert drawn[2].detail == ["only if sms_opt_in eq True"]


def test_a_branch_draws_its_paths_side_by_side_with_the_ids_the_tick_uses() -> None:
    send = {"send": {"channel": "email", "template": "a"}}
    journey = Journey.model_validate(
        {
            "id": "j",
            "name": "J",
            "trigger": "manual",
            "steps": [
                {
                    "branch": {
                        "id": "b",
                        "if": {"trait": "tier", "eq": "gold"},
                        "then": [send],
                        "else": [send, send],
                    }
                },
                send,
            ],
        }
    )
    branch, after = flow(journey)
    assert (branch.kind, [(t, len(p)) for t, p in branch.paths]) == ("branch", [("then", 1), ("else", 2)])
    assert [n.step_id for n in branch.paths[1][1]] == ["b.else-1", "b.else-2"]
    assert branch.paths[0][1][0].label == "send email: a" and branch.detail == ["only if tier eq 'gold'"]
    assert after.step_id == "step-2"


def test_a_wait_for_draws_what_it_waits_for_and_its_two_paths() -> None:
    journey = Journey.model_validate(
        {
            "id": "j",
            "name": "J",
            "trigger": {"event": {"name": "checkout_started"}},
            "steps": [
                {
                    "wait_for": {
                        "id": "paid",
                        "event": "order_placed",
                        "match": ["cart_id"],
                        "within": "4h",
                        "timed_out": [{"send": {"channel": "email", "template": "a"}}],
                    }
                }
            ],
        }
    )
    (paid,) = flow(journey)
    assert (paid.label, paid.detail) == ("wait up to 4h for order_placed", ["same cart_id as the trigger"])
    assert [(t, len(p)) for t, p in paid.paths] == [("happened", 0), ("timed_out", 1)]


def test_a_cursor_survives_its_link_and_a_malformed_one_means_the_first_page() -> None:
    cursor = Cursor(AT, "42")
    assert decode(cursor.encode()) == cursor
    assert decode(cursor.encode()).number == 42  # type: ignore[union-attr]
    for junk in (None, "", "nonsense", "2026~x", "20261122T120000.000000Z"):
        assert decode(junk) is None
    assert Cursor(AT, "campaign~with~tildes").encode().endswith("~campaign~with~tildes")
    assert decode(Cursor(AT, "a~b").encode()) == Cursor(AT, "a~b")


def test_addresses_are_masked_for_viewers_as_on_the_dry_run() -> None:
    assert mask("ada@example.com") == "a***@example.com"
    assert mask("+15551234567") == "+1555***67"
    assert mask(None) == "-"
    assert shown("ada@example.com", full=True) == "ada@example.com"
    assert shown("ada@example.com", full=False) == "a***@example.com"


def test_ledger_filters_ignore_what_is_not_a_status_channel_or_date_and_round_trip_their_days() -> None:
    f = parse_filter(
        {"status": "sent", "channel": "fax", "since": "2026-11-01", "until": "2026-11-03", "journey": " j "}
    )
    assert (f.status, f.channel, f.journey) == ("sent", None, "j")
    assert f.since == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert f.until == dt.datetime(2026, 11, 4, tzinfo=dt.UTC)
    assert parse_filter(f.query()) == f
    assert parse_filter({"status": "sideways", "since": "yesterday"}).status is None
