"""The preference centre behind every marketing email's footer link and `List-Unsubscribe` URL.

The link's token names one delivery (`automation.core.tokens`), so the page
reads and changes only the choices of that delivery's customer, whatever a
form posts. GET only shows the page (mail scanners follow links); a POST
switches topics (`save`), leaves every topic of the channel (`leave`), or
undoes the last leaving from this link within 24 hours (`undo`). A POST whose
body is RFC 8058's `List-Unsubscribe=One-Click` leaves the message's own
topic at once: RFC 8058 asks that one-click unsubscribes the recipient from
the list the message came from, and the Gmail and Yahoo sender rules
(February 2024) ask that it take effect without a further step; the topic is
that list, so a customer leaving promotions keeps their receipts and the
letter they chose. Leaving everything switches every topic off and keeps
transactional mail (receipts) flowing; the address is not suppressed.

Links expire `AUTOMATION_PREFERENCE_LINK_DAYS` after the message was sent.
The page is plain HTML without scripts, every value escaped by Jinja.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs

from jinja2 import Environment
from sqlalchemy.orm import Session, sessionmaker

from automation.core.tokens import verify_unsubscribe_token
from automation.core.topics import Topic, confirmable, subscribed
from automation.definitions.catalog import Catalog
from automation.store import topics as topic_choices
from automation.store.models import Delivery


def _one_click(form: dict[str, list[str]], body: bytes) -> bool:
    """RFC 8058's `List-Unsubscribe=One-Click`, form-encoded or as multipart/form-data."""
    if form.get("List-Unsubscribe") == ["One-Click"]:
        return True
    return b'name="List-Unsubscribe"' in body and b"One-Click" in body


_ENV = Environment(autoescape=True)
PAGE = _ENV.from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{{ title }} · {{ brand }}</title></head>
<body style="font-family: sans-serif; max-width: 36rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5">
<p style="font-weight: bold; letter-spacing: .05em">{{ brand }}</p>
<h1>{{ title }}</h1>
{% if note %}<p role="status">{{ note }}</p>{% endif %}
{% if undo %}<form method="post" action=""><input type="hidden" name="action" value="undo">
<p>Changed your mind? You can undo this until {{ undo }} UTC.</p>
<button type="submit">Undo</button></form>{% endif %}
{% if topics %}<form method="post" action=""><input type="hidden" name="action" value="save">
<fieldset><legend>The messages you receive at this address</legend>
{% for t in topics %}<p><label><input type="checkbox" name="topic" value="{{ t.id }}"
{%- if t.on %} checked{% endif %}> <strong>{{ t.name }}</strong></label>
{% if t.description %}<br><span>{{ t.description }}</span>{% endif %}</p>
{% endfor %}</fieldset>
<p><button type="submit">Save my choices</button></p></form>
<form method="post" action=""><input type="hidden" name="action" value="leave">
<p><button type="submit">Leave everything</button> (order and account messages still arrive)</p></form>
{% endif %}
</body></html>
"""
)
MESSAGE = _ENV.from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>{{ title }} · {{ brand }}</title></head>
<body style="font-family: sans-serif; max-width: 36rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5">
<p style="font-weight: bold">{{ brand }}</p><h1>{{ title }}</h1><p>{{ text }}</p>
{% if button %}<form method="post" action=""><button type="submit">{{ button }}</button></form>{% endif %}
</body></html>
"""
)


def delivery_for(token: str, secrets: Sequence[str], s: Session) -> Delivery | None:
    """The delivery a valid token names, if it exists."""
    delivery_id = verify_unsubscribe_token(token, secrets)
    return s.get(Delivery, delivery_id) if delivery_id is not None else None


@dataclass(frozen=True)
class Answer:
    status: int
    html: str


class PreferenceCentre:
    """The page and its actions, over the database and the newest valid catalog."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        catalog: Callable[[], Catalog | None],
        secrets: Sequence[str],
        link_days: int,
        brand: str,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.sessions = sessions
        self.catalog = catalog
        self.secrets = secrets
        self.link_for = dt.timedelta(days=link_days)
        self.brand = brand
        self.clock = clock

    def _message(self, status: int, title: str, text: str, button: str | None = None) -> Answer:
        return Answer(status, MESSAGE.render(brand=self.brand, title=title, text=text, button=button))

    def _delivery(self, s: Session, token: str, now: dt.datetime) -> Delivery | Answer:
        d = delivery_for(token, self.secrets, s)
        if d is None:
            return self._message(404, "Link not valid", "This link is not valid.")
        if now - (d.sent_at or d.due_at) > self.link_for:
            return self._message(
                410, "Link expired", "This link has expired: use the one in a newer message."
            )
        return d

    def handle(self, token: str, method: str, body: bytes) -> Answer:
        """The answer to a GET or POST of the preference centre link."""
        now = self.clock()
        catalog = self.catalog()
        if catalog is None:
            return self._message(503, "Temporarily unavailable", "Please try again in a few minutes.")
        with self.sessions.begin() as s:
            d = self._delivery(s, token, now)
            if isinstance(d, Answer):
                return d
            topics = [t for t in catalog.topics.values() if t.channel == d.channel]
            if method != "POST":
                return self._page(s, d, catalog, topics, now)
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            action = form.get("action", [""])[0]
            if not action and _one_click(form, body):
                journey = catalog.get(d.journey_id)
                own = journey.topic_id if journey is not None else None
                left = [own] if own else [t.id for t in topics]
                topic_choices.leave(s, d.id, d.customer_id, left, now, "one-click")
                d.unsubscribed_at = d.unsubscribed_at or now  # the message's own feedback in reports
                return self._page(s, d, catalog, topics, now, "You are unsubscribed from these messages.")
            if action in ("leave", ""):
                topic_choices.leave(s, d.id, d.customer_id, [t.id for t in topics], now, "link")
                d.unsubscribed_at = d.unsubscribed_at or now
                return self._page(s, d, catalog, topics, now, "You are unsubscribed from every topic.")
            if action == "save":
                wanted = set(form.get("topic", []))
                self._save(s, d, catalog, topics, wanted, now)
                return self._page(s, d, catalog, topics, now, "Your choices are saved.")
            if action == "undo":
                undo = topic_choices.undoable(s, d.id, d.customer_id, now)
                if undo is None:
                    return self._message(
                        410, "Nothing to undo", "There is no recent change to undo any more."
                    )
                topic_choices.undo(s, undo)
                return self._page(s, d, catalog, topics, now, "Your previous choices are back.")
        return self._message(400, "Not understood", "That request was not understood.")

    def _states(self, s: Session, d: Delivery, catalog: Catalog, topics: list[Topic]) -> dict[str, bool]:
        choices = topic_choices.of(s, [d.customer_id]).get(d.customer_id, {})
        return {t.id: subscribed(t, choices.get(t.id), catalog.double_opt_in(t.id)) for t in topics}

    def _save(
        self,
        s: Session,
        d: Delivery,
        catalog: Catalog,
        topics: list[Topic],
        wanted: set[str],
        now: dt.datetime,
    ) -> None:
        """Record the switches the customer changed (a topic they left alone keeps its history)."""
        states = self._states(s, d, catalog, topics)
        changed = {t.id: t.id in wanted for t in topics if states[t.id] != (t.id in wanted)}
        topic_choices.record(s, d.customer_id, changed, now, "link")
        topic_choices.forget_undo(s, d.id)

    def _page(
        self,
        s: Session,
        d: Delivery,
        catalog: Catalog,
        topics: list[Topic],
        now: dt.datetime,
        note: str | None = None,
    ) -> Answer:
        states = self._states(s, d, catalog, topics)
        undo = topic_choices.undoable(s, d.id, d.customer_id, now)
        until = (undo.left_at + topic_choices.UNDO_WITHIN).strftime("%Y-%m-%d %H:%M") if undo else None
        shown = [
            {"id": t.id, "name": t.name, "description": t.description, "on": states[t.id]} for t in topics
        ]
        html = PAGE.render(brand=self.brand, title="Your email choices", note=note, undo=until, topics=shown)
        return Answer(200, html)

    def confirm(self, token: str, method: str) -> Answer:
        """A double opt-in confirmation link: GET shows a button, POST records the confirmation."""
        now = self.clock()
        catalog = self.catalog()
        if catalog is None:
            return self._message(503, "Temporarily unavailable", "Please try again in a few minutes.")
        with self.sessions.begin() as s:
            d = delivery_for(token, self.secrets, s)
            journey = catalog.get(d.journey_id) if d is not None else None
            if d is None or journey is None or not journey.double_opt_in or journey.topic is None:
                return self._message(404, "Link not valid", "This confirmation link is not valid.")
            if not confirmable(d.sent_at or d.due_at, now):
                return self._message(
                    410, "Link expired", "This confirmation link has expired: sign up again."
                )
            topic = catalog.topics[journey.topic]
            if method != "POST":
                return self._message(
                    200, f"Confirm: {topic.name}", "Please confirm your subscription.", "Confirm"
                )
            topic_choices.record(s, d.customer_id, {topic.id: True}, now, "confirmation", confirmed_at=now)
        return self._message(200, "Subscription confirmed", f"You will receive {topic.name}. Thank you.")
