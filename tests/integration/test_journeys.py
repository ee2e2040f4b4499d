"""Every trigger kind, filter operator, re-entry policy, exit and wait form, driven by `tick(now)`.

Real PostgreSQL and Redis; small data and a few ticks per test. Times are
passed in as `now`; nothing sleeps.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from automation.config import Settings
from automation.core.filters import Filter
from automation.definitions.loader import load_programme
from automation.ingest.load import ingest
from automation.store import db
from automation.store.filter_sql import compile_filter
from automation.store.models import Customer, Enrollment
from tests.harness import Flow, identify, track, utc
from tests.standins import SendGridStandIn, TwilioStandIn

ROOT = Path(__file__).resolve().parents[2]
MakeFlow = Callable[..., Flow]


@pytest.fixture
def make_flow(settings: Settings, tmp_path: Path) -> Iterator[MakeFlow]:
    """A Flow on the shipped journeys, or on journeys written for the test (with test templates)."""
    flows: list[Flow] = []
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    for name, text in {
        "hello": "Hello {{ customer.first_name }}",
        "reminder": "Reminder for {{ customer.first_name }}",
    }.items():
        (templates / name).mkdir()
        (templates / name / "subject.txt").write_text(text)
        (templates / name / "body.html").write_text(
            '{% extends "_layouts/email.html" %}{% block content %}' + text + "{% endblock %}"
        )
        (templates / name / "body.txt").write_text(text + "\n{{ unsubscribe_url }}")
    (templates / "hello_sms").mkdir()
    (templates / "hello_sms" / "sms.txt").write_text("Hello {{ customer.first_name }}")

    def make(journeys: dict[str, str] | None = None, **overrides: object) -> Flow:
        update: dict[str, object] = dict(overrides)
        if journeys is not None:
            folder = tmp_path / f"journeys-{len(flows)}"
            folder.mkdir()
            for name, text in journeys.items():
                (folder / f"{name}.yaml").write_text(text)
            update |= {"journeys_dir": folder, "templates_dir": templates}
        flow = Flow(settings.model_copy(update=update))
        flows.append(flow)
        return flow

    yield make
    for flow in flows:
        flow.close()


def enrollments(flow: Flow, journey_id: str | None = None) -> list[Enrollment]:
    with flow.runtime.sessions() as s:
        stmt = select(Enrollment).order_by(Enrollment.id)
        if journey_id:
            stmt = stmt.where(Enrollment.journey_id == journey_id)
        return list(s.scalars(stmt))


def who(flow: Flow, journey_id: str) -> list[str]:
    return [e.customer_id for e in enrollments(flow) if e.journey_id == journey_id]


def person(cid: str, **traits: object) -> dict:
    base: dict[str, object] = {"email": f"{cid}@example.com", "first_name": cid.title(), "email_opt_in": True}
    return identify(cid, "2020-01-01T00:00:00Z", **{**base, **traits})


# ----------------------------------------------------------------- anniversary


def test_membership_anniversary_at_10_local_from_honolulu_to_kiritimati(
    make_flow: MakeFlow, sendgrid: SendGridStandIn
) -> None:
    flow = make_flow()
    flow.ingest(
        [
            person("hono", timezone="Pacific/Honolulu", signed_up_at="2024-11-25T15:00:00Z"),
            person("kiri", timezone="Pacific/Kiritimati", signed_up_at="2024-11-24T15:00:00Z"),
            person("fresh", timezone="UTC", signed_up_at="2026-11-24T10:00:00Z"),  # year 0: not yet
        ]
    )
    assert flow.tick("2026-11-24T19:59:00Z").deliveries == 0
    assert flow.tick("2026-11-24T20:00:00Z").deliveries == 1  # 10:00 on Nov 25 in Kiritimati (UTC+14)
    flow.drain()  # sent on its local day: a day later the sweep's re-queue would find it stale
    assert flow.tick("2026-11-25T19:59:00Z").deliveries == 0
    assert flow.tick("2026-11-25T20:00:00Z").deliveries == 1  # 10:00 on Nov 25 in Honolulu (UTC-10)
    assert who(flow, "membership_anniversary") == ["kiri", "hono"]
    assert [(d.customer_id, d.due_at) for d in flow.deliveries()] == [
        ("kiri", utc("2026-11-24T20:00:00Z")),
        ("hono", utc("2026-11-25T20:00:00Z")),
    ]
    flow.drain()
    assert sorted(m["subject"] for m in sendgrid.messages()) == [
        "2 years of great coffee together, Hono",
        "2 years of great coffee together, Kiri",
    ]
    # Next year's is a new occurrence; the same year never twice.
    assert flow.tick("2026-11-25T21:00:00Z").deliveries == 0
    flow.tick("2027-11-25T20:00:00Z")  # "fresh" turned 1 at 2027-11-24T10:00Z: outside the 1-day look-back
    assert sorted((e.customer_id, e.occurrence_key) for e in enrollments(flow)) == [
        ("hono", "2026"),
        ("hono", "2027"),
        ("kiri", "2026"),
        ("kiri", "2027"),
    ]


def test_anniversaries_use_the_default_zone_and_a_custom_date_trait(make_flow: MakeFlow) -> None:
    flow = make_flow(
        {
            "first_coffee": "id: first_coffee\nname: F\ntrigger:\n  anniversary: {trait: first_coffee_on, at: '08:30'}\n"
            "steps:\n  - send: {channel: email, template: hello}\n"
        },
        default_timezone="Asia/Tokyo",
    )
    flow.ingest(
        [
            person("tokyo", first_coffee_on="2023-02-10"),
            person("paris", timezone="Europe/Paris", first_coffee_on="2023-02-10"),
        ]
    )
    flow.tick("2026-02-09T23:30:00Z")  # 08:30 in Tokyo (the default zone)
    assert who(flow, "first_coffee") == ["tokyo"]
    flow.tick("2026-02-10T07:30:00Z")  # 08:30 in Paris
    assert who(flow, "first_coffee") == ["tokyo", "paris"]
    assert [e.context["years"] for e in enrollments(flow)] == [3, 3]


@pytest.mark.parametrize(
    ("zone", "birthday", "due"),
    [
        ("Europe/Paris", "1990-03-29", "2026-03-29T07:00:00Z"),  # spring forward: 09:00 CEST
        ("Europe/Paris", "1990-10-25", "2026-10-25T08:00:00Z"),  # fall back: 09:00 CET
        ("America/New_York", "1990-03-08", "2026-03-08T13:00:00Z"),  # spring forward: 09:00 EDT
        ("America/New_York", "1990-11-01", "2026-11-01T14:00:00Z"),  # fall back: 09:00 EST
        ("Pacific/Honolulu", "2000-02-29", "2027-02-28T19:00:00Z"),  # Feb 29 in a common year
        ("Pacific/Kiritimati", "2000-02-29", "2028-02-28T19:00:00Z"),  # Feb 29 in a leap year
    ],
)
def test_birthday_at_9_local_on_dst_days_and_feb_29(
    make_flow: MakeFlow, zone: str, birthday: str, due: str
) -> None:
    flow = make_flow()
    flow.ingest([person("b", timezone=zone, birthday=birthday)])
    just_before = utc(due).replace(minute=59, hour=utc(due).hour - 1).isoformat()
    assert flow.tick(just_before).deliveries == 0
    assert flow.tick(due).deliveries == 1
    [row] = flow.deliveries()
    assert (row.journey_id, row.due_at) == ("birthday", utc(due))


def test_birthday_needs_consent_and_a_missed_day_is_not_sent_late(
    make_flow: MakeFlow, sendgrid: SendGridStandIn
) -> None:
    flow = make_flow()
    flow.ingest(
        [
            person("yes", birthday="1990-06-15"),
            person("no", birthday="1990-06-15", email_opt_in=False),
            person("late", birthday="1990-06-13"),
        ]
    )
    flow.run("2026-06-15T09:00:00Z")
    statuses = {d.customer_id: (d.status, d.reason) for d in flow.deliveries()}
    assert statuses == {"yes": ("sent", None), "no": ("skipped", "consent: no email_opt_in")}
    [mail] = sendgrid.messages()
    assert mail["subject"] == "Happy birthday, Yes! A bag is on us"
    assert "BIRTHDAY-BREW" in mail["text"]


# ----------------------------------------------------------------- inactivity, exit, goal, `if`


def test_inactive_60d_email_then_sms_if_opted_in(
    make_flow: MakeFlow, sendgrid: SendGridStandIn, twilio: TwilioStandIn
) -> None:
    flow = make_flow()
    flow.ingest(
        [
            person("sms", phone="+15550001111", sms_opt_in=True),
            person("nosms", phone="+15550002222", sms_opt_in=False),
            person("never"),
            track("sms", "order_placed", "2026-01-01T10:00:00Z", "o-1", total=20),
            track("nosms", "order_placed", "2026-01-01T10:00:00Z", "o-2", total=20),
        ]
    )
    assert flow.tick("2026-03-02T09:59:00Z").deliveries == 0
    flow.run("2026-03-02T10:00:00Z")  # 60 days after the last order
    assert sorted(who(flow, "inactive_60d")) == ["nosms", "sms"]  # never-bought is not inactive
    assert len(sendgrid.messages()) == 2
    assert flow.tick("2026-03-09T09:59:00Z").deliveries == 0
    flow.run("2026-03-09T10:00:00Z")  # 7 days later
    sms_rows = {d.customer_id: (d.status, d.reason) for d in flow.deliveries(channel="sms")}
    assert sms_rows == {
        "sms": ("sent", None),
        "nosms": ("skipped", "consent: no sms_opt_in"),
    }
    [text] = twilio.accepted
    assert "COMEBACK15" in text.body["Body"]
    assert {e.state for e in enrollments(flow)} == {"completed"}


def test_the_if_of_a_step_is_judged_when_sending(make_flow: MakeFlow, twilio: TwilioStandIn) -> None:
    flow = make_flow(
        {
            "vip": "id: vip\nname: V\ntrigger: {event: {name: order_placed}}\nquiet_hours: false\n"
            "frequency_cap: false\nsteps:\n"
            "  - wait: {hours: 1}\n"
            "  - send: {channel: sms, template: hello_sms, if: {all: [{trait: vip, eq: true}, {fact: order_count, gte: 2}]}}\n",
            "traits": "traits:\n  - {name: vip, type: boolean}\n",  # a custom trait a filter reads is declared
        }
    )
    flow.ingest(
        [
            person("a", phone="+15550003333", sms_opt_in=True, vip=True),
            person("b", phone="+15550004444", sms_opt_in=True, vip=False),
            track("a", "order_placed", "2026-05-01T09:00:00Z", "a-1"),
            track("a", "order_placed", "2026-05-01T09:30:00Z", "a-2"),
            track("b", "order_placed", "2026-05-01T09:00:00Z", "b-1"),
            track("b", "order_placed", "2026-05-01T09:30:00Z", "b-2"),
        ]
    )
    flow.tick("2026-05-01T10:00:00Z")  # deliveries for the 09:00 orders are queued now...
    flow.ingest([identify("b", "2026-05-01T10:05:00Z", vip=True)])  # ...and b becomes a VIP before the send
    flow.drain()
    assert {d.customer_id: d.status for d in flow.deliveries()} == {"a": "sent", "b": "sent"}
    flow.ingest([identify("a", "2026-05-01T10:10:00Z", vip=False)])
    flow.run("2026-05-01T10:30:00Z")
    second = {d.customer_id: (d.status, d.reason) for d in flow.deliveries()[2:]}
    assert second == {
        "a": ("skipped", "if: all of (vip eq True; order_count gte 2) does not hold"),
        "b": ("sent", None),
    }
    assert len(twilio.accepted) == 3


def test_an_order_ends_the_winback_skips_what_is_pending_and_counts_as_conversion(
    make_flow: MakeFlow,
) -> None:
    flow = make_flow()
    flow.ingest([person("c"), track("c", "order_placed", "2026-01-01T10:00:00Z", "o-1", total=20)])
    flow.tick("2026-03-02T10:00:00Z")
    [email] = flow.deliveries()
    assert email.status == "queued"  # not yet taken by a worker
    flow.ingest([track("c", "order_placed", "2026-03-03T08:00:00Z", "o-2", total=30)])
    assert flow.tick("2026-03-03T08:01:00Z").exited == 1
    [email] = flow.deliveries(journey_id="inactive_60d")
    assert (email.status, email.reason) == ("skipped", "exited: order_placed")
    [e] = enrollments(flow, "inactive_60d")
    assert (e.state, e.exit_reason, e.converted_at) == (
        "exited",
        "exit_on:order_placed",
        utc("2026-03-03T08:01:00Z"),
    )
    flow.tick("2026-03-10T10:00:00Z")
    assert len(flow.deliveries(journey_id="inactive_60d")) == 1  # no SMS after the exit
    # Buying again and lapsing again is a new occurrence: the customer re-enters.
    flow.tick("2026-05-02T08:00:00Z")
    assert [(x.occurrence_key, x.state) for x in enrollments(flow, "inactive_60d")] == [
        ("2026-01-01T10:00:00+00:00", "exited"),
        ("2026-03-03T08:00:00+00:00", "active"),
    ]


def winback_sms_deferred(make_flow: MakeFlow) -> Flow:
    """The shipped win-back, run up to its last step: the SMS, made at 22:00 and deferred to 08:00."""
    flow = make_flow()
    flow.ingest(
        [
            person("d", timezone="UTC", phone="+15550007777", sms_opt_in=True),
            track("d", "order_placed", "2026-01-01T22:00:00Z", "o-1"),
        ]
    )
    flow.run("2026-03-02T22:00:00Z")  # the email falls in quiet hours...
    flow.run("2026-03-03T08:00:00Z")  # ...and goes at 08:00
    flow.run("2026-03-09T22:00:00Z")  # seven days after the email was due: the SMS, deferred
    return flow


def test_an_order_skips_the_winback_sms_deferred_by_quiet_hours_after_the_last_step(
    make_flow: MakeFlow, twilio: TwilioStandIn
) -> None:
    """The SMS is the journey's last step: made, deferred to 08:00, then the customer orders."""
    flow = winback_sms_deferred(make_flow)
    [sms] = flow.deliveries(journey_id="inactive_60d")[1:]
    assert (sms.status, sms.reason, sms.due_at) == ("deferred", "quiet hours", utc("2026-03-10T08:00:00Z"))
    [e] = enrollments(flow, "inactive_60d")
    assert (e.state, e.next_step_id) == ("active", None)  # no step left, but a message unsettled
    flow.ingest([track("d", "order_placed", "2026-03-10T07:00:00Z", "o-2")])
    assert flow.run("2026-03-10T08:00:00Z").exited == 1
    [sms] = flow.deliveries(journey_id="inactive_60d")[1:]
    assert (sms.status, sms.reason) == ("skipped", "exited: order_placed")
    assert twilio.accepted == []
    [e] = enrollments(flow, "inactive_60d")
    assert (e.state, e.exit_reason) == ("exited", "exit_on:order_placed")


def test_an_enrollment_completes_when_its_last_message_is_settled(
    make_flow: MakeFlow, twilio: TwilioStandIn
) -> None:
    flow = winback_sms_deferred(make_flow)
    assert [e.state for e in enrollments(flow, "inactive_60d")] == ["active"]
    flow.run("2026-03-10T08:00:00Z")  # released at 08:00 and sent: settled by the worker
    assert [d.status for d in flow.deliveries(journey_id="inactive_60d")] == ["sent", "sent"]
    assert len(twilio.accepted) == 1
    assert [e.state for e in enrollments(flow, "inactive_60d")] == ["completed"]


def test_exit_by_a_non_goal_event_is_not_a_conversion(make_flow: MakeFlow) -> None:
    flow = make_flow(
        {
            "nudge": "id: nudge\nname: N\ntrigger: {event: {name: cart_abandoned}}\n"
            "exit_on: {events: [order_placed, unsubscribed_all]}\ngoal: {event: order_placed}\n"
            "steps:\n  - wait: {days: 1}\n  - send: {channel: email, template: hello}\n"
        }
    )
    flow.ingest(
        [
            person("buyer"),
            person("leaver"),
            track("buyer", "cart_abandoned", "2026-05-01T09:00:00Z", "c-1"),
            track("leaver", "cart_abandoned", "2026-05-01T09:00:00Z", "c-2"),
        ]
    )
    flow.tick("2026-05-01T09:05:00Z")
    flow.ingest(
        [
            track("buyer", "order_placed", "2026-05-01T12:00:00Z", "o-1"),
            track("leaver", "unsubscribed_all", "2026-05-01T12:00:00Z", "u-1"),
        ]
    )
    flow.tick("2026-05-02T09:00:00Z")
    got = {e.customer_id: (e.state, e.exit_reason, e.converted_at is not None) for e in enrollments(flow)}
    assert got == {
        "buyer": ("exited", "exit_on:order_placed", True),
        "leaver": ("exited", "exit_on:unsubscribed_all", False),
    }
    assert flow.deliveries() == []


# ----------------------------------------------------------------- tier change, manual


def test_tier_upgrade_on_the_way_up_only(make_flow: MakeFlow, sendgrid: SendGridStandIn) -> None:
    flow = make_flow()
    flow.ingest(
        [
            person("up", tier="silver"),
            person("down", tier="gold"),
            identify("up", "2026-06-01T10:00:00Z", tier="gold"),
            identify("down", "2026-06-01T10:00:00Z", tier="silver"),
        ]
    )
    flow.run("2026-06-01T10:01:00Z")
    assert who(flow, "tier_upgrade") == ["up"]
    [mail] = sendgrid.messages()
    assert mail["subject"] == "Welcome to Gold, Up!"
    assert "Early access to limited micro-lots" in mail["text"]


def test_tier_change_to_a_tier_in_a_declared_order(make_flow: MakeFlow, tmp_path: Path) -> None:
    """The tiers and their order are loyalty.yaml's list (it replaced tiers.yaml); the programme moves them."""
    flow = make_flow(
        {
            "loyalty": "points:\n  earn:\n    - {event: order_placed, per_currency_unit: 1}\n"
            "tiers:\n  levels:\n    - {name: green, min: 0}\n    - {name: black, min: 100}\n"
            "  downgrade: {at: immediately}\n",
            "to_black": "id: to_black\nname: B\ntrigger: {tier_change: {to: [black], direction: up}}\n"
            "steps:\n  - send: {channel: email, template: hello}\n",
            "any_down": "id: any_down\nname: D\ntrigger: {tier_change: {direction: down}}\n"
            "steps:\n  - send: {channel: email, template: hello}\n",
        }
    )
    programme, problems = load_programme(flow.settings.journeys_dir)
    assert problems == [] and programme is not None

    def feed(*records: dict[str, object]) -> None:
        lines = [json.dumps(r) for r in records]
        ingest(lines, "test", flow.runtime.sessions, utc("2026-11-22T12:00:00Z"), programme=programme)

    feed(
        person("x"),
        person("y"),
        track("x", "order_placed", "2026-05-20T10:00:00Z", "o-x1", total=40, order_id="o-x1"),
        track("y", "order_placed", "2026-05-20T10:00:00Z", "o-y1", total=150, order_id="o-y1"),
    )
    feed(
        track("x", "order_placed", "2026-06-01T10:00:00Z", "o-x2", total=80, order_id="o-x2"),
        track("y", "order_refunded", "2026-06-01T10:00:00Z", "r-y1", order_id="o-y1"),
    )
    flow.tick("2026-06-01T10:01:00Z")  # the changes of 20 May are older than the 3-day look-back
    assert (who(flow, "to_black"), who(flow, "any_down")) == (["x"], ["y"])
    assert enrollments(flow, "to_black")[0].context == {"old_tier": "green", "new_tier": "black"}


def test_tier_changes_older_than_the_lookback_are_ignored(make_flow: MakeFlow) -> None:
    flow = make_flow()
    flow.ingest([person("old", tier="bronze"), identify("old", "2026-06-01T10:00:00Z", tier="silver")])
    flow.tick("2026-06-04T10:01:00Z")  # look-back is 3 days
    assert who(flow, "tier_upgrade") == []


def test_a_manual_journey_never_enrolls_at_a_tick(make_flow: MakeFlow) -> None:
    flow = make_flow(
        {
            "promo": "id: promo\nname: P\ntrigger: manual\nsteps:\n  - send: {channel: email, template: hello}\n"
        }
    )
    flow.ingest([person("a"), track("a", "order_placed", "2026-06-01T09:00:00Z", "o-1")])
    flow.tick("2026-06-01T10:00:00Z")
    assert enrollments(flow) == []


# ----------------------------------------------------------------- re-entry


REENTRY = (
    "id: r\nname: R\ntrigger: {{event: {{name: visit, lookback: 30d}}}}\n{policy}"
    "steps:\n  - send: {{channel: email, template: hello}}\n"
)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("", ["v-1", "v-2", "v-3", "v-4"]),  # once per occurrence (the default)
        ("re_entry: once_per_occurrence\n", ["v-1", "v-2", "v-3", "v-4"]),
        ("re_entry: once\n", ["once"]),
        ("re_entry: {cooldown: 30d}\n", ["v-1", "v-4"]),
    ],
)
def test_re_entry_policies(make_flow: MakeFlow, policy: str, expected: list[str]) -> None:
    flow = make_flow({"r": REENTRY.format(policy=policy)})
    flow.ingest([person("a")])
    for n, day in enumerate(["2026-04-01", "2026-04-10", "2026-04-20", "2026-05-05"], 1):
        flow.ingest([track("a", "visit", f"{day}T09:00:00Z", f"v-{n}")])
        flow.tick(f"{day}T10:00:00Z")
        flow.tick(f"{day}T11:00:00Z")
    assert [e.occurrence_key for e in enrollments(flow)] == expected


# ----------------------------------------------------------------- waits, time zones


def test_wait_until_a_local_time_in_each_zone(make_flow: MakeFlow) -> None:
    flow = make_flow(
        {
            "morning": "id: morning\nname: M\ntrigger: {event: {name: signup}}\nquiet_hours: false\nsteps:\n"
            "  - wait: {until: '09:00'}\n  - send: {channel: email, template: hello}\n"
            "  - wait: {duration: 90m}\n  - send: {id: later, channel: email, template: reminder}\n"
        }
    )
    flow.ingest(
        [
            person("hono", timezone="Pacific/Honolulu"),
            person("kiri", timezone="Pacific/Kiritimati"),
            person("ny", timezone="America/New_York"),
            track("hono", "signup", "2026-03-07T20:00:00Z", "s-1"),
            track("kiri", "signup", "2026-03-07T18:00:00Z", "s-2"),  # 08:00 on Mar 8 in Kiritimati
            track("ny", "signup", "2026-03-07T20:00:00Z", "s-3"),  # the night before the US clocks change
        ]
    )
    for now in (
        "2026-03-07T19:00:00Z",
        "2026-03-07T20:30:00Z",
        "2026-03-08T13:00:00Z",
        "2026-03-08T14:30:00Z",
        "2026-03-08T19:00:00Z",
        "2026-03-08T20:30:00Z",
    ):
        flow.tick(now)
    got = sorted((d.customer_id, d.step_id, d.due_at.isoformat()) for d in flow.deliveries())
    assert got == [
        ("hono", "later", "2026-03-08T20:30:00+00:00"),
        ("hono", "step-2", "2026-03-08T19:00:00+00:00"),  # 09:00 HST
        ("kiri", "later", "2026-03-07T20:30:00+00:00"),
        ("kiri", "step-2", "2026-03-07T19:00:00+00:00"),  # 09:00 on Mar 8 LINT (UTC+14)
        ("ny", "later", "2026-03-08T14:30:00+00:00"),
        ("ny", "step-2", "2026-03-08T13:00:00+00:00"),  # 09:00 EDT, the first morning of DST
    ]


# ----------------------------------------------------------------- editing a journey in flight


V1 = (
    "id: onboarding\nname: O\ntrigger: {event: {name: signup, lookback: 30d}}\nquiet_hours: false\nfrequency_cap: false\n"
    "steps:\n"
    "  - send: {id: welcome, channel: email, template: hello}\n"
    "  - wait: {id: pause-1, days: 1}\n"
    "  - send: {id: tips, channel: email, template: reminder}\n"
    "  - wait: {id: pause-2, days: 1}\n"
    "  - send: {id: survey, channel: email, template: hello}\n"
)
V2 = (
    "id: onboarding\nname: O\ntrigger: {event: {name: signup, lookback: 30d}}\nquiet_hours: false\nfrequency_cap: false\n"
    "steps:\n"
    "  - send: {id: welcome, channel: email, template: hello}\n"
    "  - wait: {id: pause-1b, days: 2}\n"
    "  - send: {id: survey, channel: email, template: reminder}\n"
)


def test_an_edited_journey_continues_in_flight_enrollments_by_step_id(make_flow: MakeFlow) -> None:
    v1 = make_flow({"onboarding": V1})
    v1.ingest(
        [
            person("early"),
            person("late"),
            track("early", "signup", "2026-04-01T09:00:00Z", "s-1"),
            track("late", "signup", "2026-04-02T09:00:00Z", "s-2"),
        ]
    )
    v1.tick("2026-04-01T09:00:00Z")
    v1.tick("2026-04-02T09:00:00Z")
    # early has had welcome and tips and waits for `survey`; late had welcome and waits for `tips`.
    assert {e.customer_id: e.next_step_id for e in enrollments(v1)} == {"early": "survey", "late": "tips"}
    v2 = make_flow({"onboarding": V2})
    v2.tick("2026-04-03T09:00:00Z")
    v2.drain()  # an enrollment completes once its last message is settled
    after = {e.customer_id: (e.state, e.next_step_id) for e in enrollments(v2)}
    assert after == {"early": ("completed", None), "late": ("completed", None)}
    sent = sorted((d.customer_id, d.step_id, d.template) for d in v2.deliveries())
    assert sent == [
        ("early", "survey", "reminder"),  # `survey` still exists: continued there, with the new template
        ("early", "tips", "reminder"),
        ("early", "welcome", "hello"),
        ("late", "welcome", "hello"),  # `tips` was removed: completed without sending
    ]


# ----------------------------------------------------------------- filters on real PostgreSQL


FILTER_PEOPLE = [
    person("a", tier="gold", city="Lyon", cups=12, vip=True, anniversary_on="2020-05-01"),
    person("b", tier="silver", city="Paris", cups=3, vip=False, anniversary_on="2023-05-01"),
    person("c", tier="bronze", cups="lots", email_opt_in=False),  # a word where a number is expected
    person("d"),
    track("a", "order_placed", "2026-01-10T09:00:00Z", "o-1", total=40),
    track("a", "order_placed", "2026-02-10T09:00:00Z", "o-2", total=60),
    track("b", "order_placed", "2026-03-10T09:00:00Z", "o-3", total=15),
]


FILTER_CASES = [
    ({"trait": "tier", "eq": "gold"}, "a"),
    ({"trait": "tier", "ne": "gold"}, "bcd"),
    ({"trait": "tier", "in": ["silver", "bronze"]}, "bc"),
    ({"trait": "city", "eq": "Lyon"}, "a"),
    ({"trait": "city", "ne": "Lyon"}, "bcd"),
    ({"trait": "city", "in": ["Paris", "Nice"]}, "b"),
    ({"trait": "cups", "gt": 3}, "a"),
    ({"trait": "cups", "gte": 3}, "ab"),
    ({"trait": "cups", "lt": 12}, "b"),
    ({"trait": "cups", "lte": 12}, "ab"),
    ({"trait": "vip", "eq": True}, "a"),
    ({"trait": "vip", "eq": False}, "b"),
    ({"trait": "email_opt_in", "eq": False}, "c"),
    ({"trait": "city", "exists": True}, "ab"),
    ({"trait": "city", "exists": False}, "cd"),
    ({"trait": "tier", "exists": False}, "d"),
    ({"trait": "anniversary_on", "lt": "2022-01-01"}, "a"),
    ({"fact": "order_count", "gte": 2}, "a"),
    ({"fact": "order_count", "eq": 0}, "cd"),
    ({"fact": "lifetime_value", "gt": 20}, "a"),
    ({"fact": "last_order_at", "gte": "2026-03-01T00:00:00Z"}, "b"),
    ({"fact": "last_order_at", "exists": True}, "ab"),
    ({"all": [{"trait": "tier", "in": ["gold", "silver"]}, {"fact": "order_count", "lt": 2}]}, "b"),
    ({"any": [{"trait": "tier", "eq": "gold"}, {"trait": "email_opt_in", "eq": False}]}, "ac"),
    ({"not": {"trait": "tier", "eq": "gold"}}, "bcd"),
    ({"not": {"any": [{"trait": "vip", "eq": True}, {"trait": "cups", "lt": 5}]}}, "cd"),
]


def test_filter_operators_run_in_postgresql(sessions: sessionmaker[Session]) -> None:
    ingest([json.dumps(r) for r in FILTER_PEOPLE], "t", sessions, utc("2026-04-01T00:00:00Z"))
    with sessions() as s:
        for spec, expected in FILTER_CASES:
            stmt = (
                select(Customer.id).where(compile_filter(Filter.model_validate(spec))).order_by(Customer.id)
            )
            assert "".join(s.scalars(stmt)) == expected, spec


def test_an_audience_limits_who_enters(make_flow: MakeFlow) -> None:
    flow = make_flow(
        {
            "big": "id: big\nname: B\ntrigger: {event: {name: order_placed, where: {channel: web}}}\n"
            "audience: {all: [{trait: city, exists: true}, {fact: lifetime_value, gte: 50}]}\n"
            "steps:\n  - send: {channel: email, template: hello}\n",
            "traits": "traits:\n  - {name: city, type: string}\n",
        }
    )
    flow.ingest(FILTER_PEOPLE)
    flow.ingest(
        [
            track("a", "order_placed", "2026-04-01T09:00:00Z", "o-4", total=5, channel="web"),
            track("b", "order_placed", "2026-04-01T09:00:00Z", "o-5", total=5, channel="web"),
            track("a", "order_placed", "2026-04-01T09:30:00Z", "o-6", total=5, channel="shop"),
        ]
    )
    flow.tick("2026-04-01T10:00:00Z")
    assert [(e.customer_id, e.occurrence_key) for e in enrollments(flow)] == [("a", "o-4")]


def test_filter_operators_on_the_embedded_sqlite_too(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'lite.db'}")
    db.upgrade(engine)
    sessions = db.sessions(engine)
    ingest([json.dumps(r) for r in FILTER_PEOPLE], "t", sessions, utc("2026-04-01T00:00:00Z"))
    with sessions() as s:
        for spec, expected in FILTER_CASES:
            stmt = (
                select(Customer.id).where(compile_filter(Filter.model_validate(spec))).order_by(Customer.id)
            )
            assert "".join(s.scalars(stmt)) == expected, spec
    engine.dispose()
