"""Which message wins a cap slot, and messages that would go too late, on PostgreSQL, Redis and the SDKs."""

from __future__ import annotations

from pathlib import Path

import pytest

from automation.config import Settings
from tests.deliverykit import event, kit_env, kit_settings, person
from tests.harness import Flow, identify, track

__all__ = ["kit_env", "kit_settings"]

NOW = "2026-11-22T12:00:00Z"
EARLIER = "2026-11-22T11:00:00Z"
RANKED = {
    "a_everyday": ("contest", ""),
    "b_occasion": ("contest", "priority: 10\n"),
    "late_default": ("outage", ""),
    "late_never": ("outage", "send_within: false\n"),
    "late_quiet": ("quiet", "send_within: 6h\n"),
}


@pytest.fixture
def ranked(kit_settings: Settings) -> Flow:
    for jid, (name, extra) in RANKED.items():
        (kit_settings.journeys_dir / f"{jid}.yaml").write_text(
            f"id: {jid}\nname: {jid}\ntrigger: {{event: {{name: {name}}}}}\n{extra}"
            "steps:\n  - send: {id: mail, channel: email, template: promo_mail}\n",
            encoding="utf-8",
        )
    flow = Flow(kit_settings)
    yield flow
    flow.close()


def test_a_higher_priority_wins_the_cap_slot_whichever_is_judged_first(ranked: Flow) -> None:
    ranked.ingest([person("ada"), event("ada", "contest", NOW)])
    ranked.tick(NOW)
    low, high = ranked.deliveries()
    assert (low.journey_id, high.journey_id) == ("a_everyday", "b_occasion") and low.id < high.id
    # The everyday message is judged first, as row order would have it; the occasion still wins.
    assert ranked.deliverer.deliver(low.id, "m-low") == "deferred"
    assert ranked.deliverer.deliver(high.id, "m-high") == "sent"
    low, high = ranked.deliveries()
    assert (low.status, low.reason, low.due_at.isoformat()) == (
        "deferred",
        "frequency cap",
        "2026-11-23T12:00:00+00:00",
    )


def test_equal_priorities_go_in_order_of_due_time(ranked: Flow) -> None:
    ranked.ingest([person("ada"), event("ada", "outage", NOW)])
    ranked.tick(NOW)
    first, second = ranked.deliveries()
    assert ranked.deliverer.deliver(second.id, "m-2") == "deferred"  # same priority, due at the same time: id
    assert ranked.deliverer.deliver(first.id, "m-1") == "sent"


def test_a_scheduler_down_three_days_sends_no_stale_message(ranked: Flow) -> None:
    ranked.ingest([person("ada"), event("ada", "outage", EARLIER)])
    ranked.run("2026-11-24T20:00:00Z")  # within the trigger's 3-day look-back, 57 hours late
    by_journey = {r.journey_id: r for r in ranked.deliveries()}
    assert (by_journey["late_default"].status, by_journey["late_default"].reason) == (
        "skipped",
        "stale: not sent within 1d of falling due",
    )
    assert by_journey["late_never"].status == "sent"


def test_a_rival_too_late_to_send_takes_no_cap_slot_from_one_that_may_still_go(ranked: Flow) -> None:
    ranked.ingest([person("ada"), event("ada", "outage", EARLIER)])
    ranked.tick("2026-11-24T20:00:00Z")
    late_default, late_never = ranked.deliveries()
    # Judged first, alone: the rival ahead of it by id is past its 1d and will be skipped, not sent.
    assert ranked.deliverer.deliver(late_never.id, "m-never") == "sent"
    assert ranked.deliverer.deliver(late_default.id, "m-default") == "skipped"


def test_a_deferral_past_send_within_skips_it_as_stale(ranked: Flow) -> None:
    # 22:00 in Paris: quiet hours would move it to 08:00, ten hours later, beyond its 6h.
    ranked.ingest([person("ada", tz="Europe/Paris"), event("ada", "quiet", "2026-11-22T20:55:00Z")])
    ranked.run("2026-11-22T21:00:00Z")
    [row] = ranked.deliveries(journey_id="late_quiet")
    assert (row.status, row.reason) == ("skipped", "stale: not sent within 6h of falling due (quiet hours)")


def test_a_birthday_capped_behind_another_email_is_stale_rather_than_a_day_late(
    settings: Settings, tmp_path: Path
) -> None:
    flow = Flow(settings)  # the shipped journeys
    try:
        flow.ingest(
            [
                identify(
                    "ada",
                    "2026-01-01T00:00:00Z",
                    email="ada@example.com",
                    first_name="Ada",
                    timezone="UTC",
                    birthday="1990-11-22",
                    email_opt_in=True,
                ),
                track("ada", "order_placed", "2026-11-22T06:00:00Z", "o-1", total=20, currency="EUR"),
            ],
            now="2026-11-22T06:00:00Z",
        )
        flow.run("2026-11-22T08:00:00Z")  # the thank-you counts toward today's one email
        [thanks] = flow.deliveries(journey_id="post_purchase_thanks")
        assert thanks.status == "sent"
        flow.run("2026-11-22T09:00:00Z")
        [birthday] = flow.deliveries(journey_id="birthday")
        assert (birthday.status, birthday.reason) == (
            "skipped",
            "stale: past the local day of the occasion (2026-11-22) (frequency cap)",
        )
    finally:
        flow.close()
