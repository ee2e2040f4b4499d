"""The customer timeline: every decision in time order, paged without losing an entry; addresses by role."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from automation.config import Settings
from automation.store.erasure import forget
from automation.store.models import Customer
from automation.store.suppressions import suppress
from automation.web.dashboard.accounts import Role, User
from automation.web.dashboard.app import Dashboard
from automation.web.dashboard.pages import Ask
from automation.web.dashboard.timeline import timeline
from tests.harness import Flow, identify, track, utc

NOW = "2026-11-22T12:00:00Z"


def _history(settings: Settings) -> None:
    flow = Flow(settings)
    try:
        records = [
            identify(
                "c1", "2026-11-01T00:00:00Z", email="ada@example.com", timezone="UTC", email_opt_in=True
            ),
            *(
                track("c1", "order_placed", f"2026-11-2{d}T08:00:00Z", f"o-{d}", total=10)
                for d in range(0, 2)
            ),
        ]
        flow.ingest(records, now=NOW)
        flow.run("2026-11-20T10:30:00Z")
        flow.run("2026-11-21T10:30:00Z")
    finally:
        flow.close()


def test_pages_of_the_timeline_join_up_to_the_whole_story_in_time_order(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    _history(settings)
    with sessions() as s:
        c = s.get(Customer, "c1")
        assert c is not None
        whole = timeline(s, c, before=None, default_tz="UTC", full=True)
        assert whole.earlier is None
        titles = [e.title for e in whole.entries]
        assert titles.count("entered post_purchase_thanks") == 2
        assert sum(t.startswith("email sent to ada@example.com") for t in titles) == 2
        assert [e.at for e in whole.entries] == sorted(e.at for e in whole.entries)
        pages, before = [], None
        while True:
            page = timeline(s, c, before=before, default_tz="UTC", full=False, size=3)
            pages.append(page.entries)
            if page.earlier is None:
                break
            before = page.earlier
        joined = [e for p in reversed(pages) for e in p]
    assert [(e.at, e.kind) for e in joined] == [(e.at, e.kind) for e in whole.entries]
    assert all("ada@example.com" not in e.title for e in joined)


def test_a_viewer_sees_the_customer_masked_and_an_editor_whole(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    _history(settings)
    dashboard = Dashboard(settings, sessions, lambda: utc(NOW))
    for role, shown, hidden in (
        (Role.VIEWER, "a***@example.com", "ada@example.com"),
        (Role.EDITOR, "ada@example.com", None),
    ):
        ask = Ask(User(1, "u@example.com", role), utc(NOW), path={"customer_id": "c1"})
        html = dashboard.render(dashboard.views.customer(ask), None)
        assert shown in html
        if hidden:
            assert hidden not in html


def test_a_quiet_hours_deferral_stays_on_the_timeline_after_the_message_is_sent(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    flow = Flow(settings)
    try:
        flow.ingest(
            [
                identify(
                    "c2",
                    "2026-11-01T00:00:00Z",
                    email="bo@example.com",
                    timezone="Europe/Paris",
                    email_opt_in=True,
                ),
                track("c2", "order_placed", "2026-11-20T19:30:00Z", "o-late", total=12),
            ],
            now=NOW,
        )
        flow.run("2026-11-20T21:30:00Z")
        [held] = flow.deliveries(customer_id="c2")
        assert (held.status, held.due_at) == ("deferred", utc("2026-11-21T07:00:00Z"))
        flow.run("2026-11-21T07:00:00Z")
        [sent] = flow.deliveries(customer_id="c2")
        assert sent.status == "sent"
    finally:
        flow.close()
    with sessions() as s:
        c = s.get(Customer, "c2")
        assert c is not None
        story = [
            (e.at, e.title, e.detail)
            for e in timeline(s, c, before=None, default_tz="UTC", full=True).entries
        ]
    deferral = next(e for e in story if "deferred" in e[1])
    assert deferral == (
        utc("2026-11-20T21:30:00Z"),
        "email deferred (quiet hours) until 2026-11-21 07:00 UTC",
        "2026-11-21 08:00 Europe/Paris for the customer",
    )
    titles = [t for _, t, _ in story]
    assert titles.index(deferral[1]) < next(
        n for n, t in enumerate(titles) if t.startswith("email sent to bo@example.com")
    )


def test_the_timeline_tells_each_topic_choice_and_how_it_was_made(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    flow = Flow(settings)
    try:
        flow.ingest(
            [
                identify("c3", "2026-11-01T00:00:00Z", email="cy@example.com", topics={"promotions": False}),
                identify("c3", "2026-11-05T00:00:00Z", topics={"newsletter": True}),
            ],
            now=NOW,
        )
    finally:
        flow.close()
    with sessions() as s:
        c = s.get(Customer, "c3")
        assert c is not None
        story = [
            (e.at, e.kind, e.title, e.detail)
            for e in timeline(s, c, before=None, default_tz="UTC", full=True).entries
            if e.kind == "topic"
        ]
    assert story == [
        (utc("2026-11-01T00:00:00Z"), "topic", "topic promotions left", "how: ingest"),
        (utc("2026-11-05T00:00:00Z"), "topic", "topic newsletter joined", "how: ingest"),
    ]


def test_a_customer_who_comes_back_after_erasure_sees_the_suppression_kept_as_a_hash(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """Erasure keeps a suppressed address only as its hash; the timeline matched clear text only."""
    _history(settings)
    with sessions.begin() as s:
        suppress(s, "email", "ada@example.com", "unsubscribed", "link", utc("2026-11-21T12:00:00Z"))
        forget(s, "c1", utc(NOW))
    flow = Flow(settings)
    try:
        flow.ingest([identify("c1", NOW, email="ada@example.com", timezone="UTC")], now=NOW)
    finally:
        flow.close()
    with sessions() as s:
        c = s.get(Customer, "c1")
        assert c is not None
        entries = timeline(s, c, before=None, default_tz="UTC", full=True).entries
    assert [e.title for e in entries if e.kind == "suppression"] == [
        "email ada@example.com suppressed: unsubscribed"
    ]
