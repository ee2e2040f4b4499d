"""Topic states and the topic verdict: table-driven, pure, with a fixed `now`."""

from __future__ import annotations

import datetime as dt

import pytest

from automation.core import judging
from automation.core.journeys import Journey
from automation.core.statuses import Channel
from automation.core.topics import Choice, Topic, confirmable, subscribed

NOW = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)
OPT_IN = Topic(id="promotions", name="Offers", default="opt_in")
OPT_OUT = Topic(id="tips", name="Tips", default="opt_out")
YES = Choice(True, NOW, "ingest")
NO = Choice(False, NOW, "link")
CONFIRMED = Choice(True, NOW, "confirmation", confirmed_at=NOW)


@pytest.mark.parametrize(
    ("topic", "choice", "double_opt_in", "expected"),
    [
        (OPT_IN, None, False, True),
        (OPT_OUT, None, False, False),
        (OPT_IN, NO, False, False),
        (OPT_OUT, YES, False, True),
        (OPT_OUT, YES, True, False),  # a yes waits for its confirmation
        (OPT_OUT, CONFIRMED, True, True),
        (OPT_IN, None, True, False),
    ],
)
def test_a_customers_state_in_a_topic(
    topic: Topic, choice: Choice | None, double_opt_in: bool, expected: bool
) -> None:
    assert subscribed(topic, choice, double_opt_in) is expected


@pytest.mark.parametrize(
    ("age", "ok"),
    [(dt.timedelta(0), True), (dt.timedelta(days=6, hours=23), True), (dt.timedelta(days=7), False)],
)
def test_a_confirmation_link_expires_after_seven_days(age: dt.timedelta, ok: bool) -> None:
    assert confirmable(NOW - age, NOW) is ok


def journey(**settings: object) -> Journey:
    return Journey.model_validate(
        {
            "id": "j",
            "name": "J",
            "trigger": "manual",
            "steps": [{"send": {"channel": "email", "template": "t"}}],
            **settings,
        }
    )


@pytest.mark.parametrize(
    ("settings", "channel", "choice", "expected"),
    [
        ({}, Channel.EMAIL, NO, False),  # the built-in `marketing` topic
        ({"transactional": True}, Channel.EMAIL, NO, True),
        ({"topic": "promotions"}, Channel.SMS, NO, True),  # an email topic does not govern SMS
        ({"topic": "promotions", "double_opt_in": True}, Channel.EMAIL, NO, True),  # the confirmation mail
        ({"topic": "promotions"}, Channel.EMAIL, YES, True),
    ],
)
def test_the_topic_verdict(
    settings: dict[str, object], channel: Channel, choice: Choice, expected: bool
) -> None:
    j = journey(**settings)
    topic = OPT_IN if j.topic else Topic(id="marketing", name="Marketing")
    assert judging.in_topic(j, channel, topic, choice, False) is expected


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"transactional": True, "topic": "promotions"}, "a transactional journey has no topic"),
        ({"double_opt_in": True}, "double_opt_in needs the `topic` it signs customers up to"),
    ],
)
def test_topic_settings_that_contradict_are_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        journey(**settings)
