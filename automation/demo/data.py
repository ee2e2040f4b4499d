"""A seeded, realistic customer base shaped so that every journey's trigger comes due.

Pure: takes the journeys, a start instant and a seed, returns identify/track
records (the ingest format) placed in time. Besides a general population
(time zones on every continent, order histories, birthdays, tiers), each
journey gets a small group whose trigger falls inside the simulated window:
orders for event triggers, date traits for anniversaries, a last event N days
back for inactivity, identify records moving tiers for tier changes.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from automation.core import assignment
from automation.core.journeys import Journey
from automation.core.planner import anniversary_on

ZONES = (
    ("America/New_York", "USD", 1.0), ("America/Chicago", "USD", 1.0), ("America/Los_Angeles", "USD", 1.0),
    ("America/Sao_Paulo", "BRL", 5.0), ("Europe/London", "GBP", 0.8), ("Europe/Paris", "EUR", 0.95),
    ("Europe/Berlin", "EUR", 0.95), ("Africa/Johannesburg", "ZAR", 18.0), ("Asia/Kolkata", "INR", 83.0),
    ("Asia/Tokyo", "JPY", 150.0), ("Australia/Sydney", "AUD", 1.5), ("Pacific/Auckland", "NZD", 1.6),
)  # fmt: skip
FIRST = (
    "Ada", "Amara", "Aiko", "Ben", "Carmen", "Chen", "Dara", "Elif", "Emma", "Farah", "Felix",
    "Grace", "Hiro", "Ines", "Ivan", "Jonas", "Kofi", "Lea", "Lucas", "Maya", "Mateo", "Nadia",
    "Noah", "Olu", "Priya", "Rafael", "Sara", "Tariq", "Yuki", "Zoe",
)  # fmt: skip
LAST = (
    "Adeyemi", "Bauer", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lopez", "Martin", "Nakamura", "Okafor", "Patel", "Rossi", "Silva",
    "Tanaka", "Novak", "Walker", "Yilmaz", "Zhang", "Moreau", "Singh", "Kim", "Brown", "Murphy",
)  # fmt: skip
PRODUCTS = (
    ("NW-ETH-250", "Ethiopia Guji, 250 g", 14.5), ("NW-COL-250", "Colombia Huila, 250 g", 13.0),
    ("NW-HOL-1K", "Northwind holiday blend, 1 kg", 42.0), ("NW-DEC-250", "Swiss water decaf, 250 g", 13.5),
    ("NW-GRN-01", "Hand grinder", 59.0), ("NW-FLT-100", "Paper filters x100", 6.0),
)  # fmt: skip
HOUR = dt.timedelta(hours=1)


@dataclass
class Person:
    id: str
    tz: ZoneInfo
    currency: str
    fx: float
    traits: dict[str, Any]
    signed_up_at: dt.datetime
    inactive: bool = False


@dataclass
class Dataset:
    """Records before the start, records per tick (hour index), manual launches per hour index."""

    start: dt.datetime
    hours: int
    customers: int
    history: list[dict[str, Any]] = field(default_factory=list)
    timeline: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    launches: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, when: dt.datetime, record: dict[str, Any]) -> None:
        """Place a record: history before the start, else the first tick that sees it."""
        if when <= self.start:
            self.history.append(record)
            return
        hour = math.ceil((when - self.start) / HOUR)
        if hour <= self.hours:
            self.timeline[hour].append(record)

    def records(self) -> int:
        return len(self.history) + sum(len(r) for r in self.timeline.values())


class _Generator:
    def __init__(self, rng: random.Random, start: dt.datetime, days: int, order_event: str) -> None:
        self.rng = rng
        self.start = start
        self.days = days
        self.order_event = order_event
        self.orders = 0

    # ------------------------------------------------------------ people

    def person(self, n: int, tiers: tuple[str, ...]) -> Person:
        rng = self.rng
        zone, currency, fx = rng.choice(ZONES)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        signed_up = self.start - dt.timedelta(days=rng.randint(20, 5 * 365), minutes=rng.randint(0, 1439))
        born = dt.date(rng.randint(1955, 2005), 1, 1) + dt.timedelta(days=rng.randint(0, 364))
        traits: dict[str, Any] = {
            "email": f"{first}.{last}{n}@example.com".lower(),
            "first_name": first,
            "last_name": last,
            "timezone": zone,
            "tier": rng.choices(tiers[:-1] or tiers, k=1)[0],
            "birthday": born.isoformat(),
            "email_opt_in": rng.random() < 0.9,
            "sms_opt_in": rng.random() < 0.5,
            "favourite_roast": rng.choice(("light", "medium", "dark")),
        }
        if traits["sms_opt_in"] or rng.random() < 0.3:
            traits["phone"] = f"+1555{rng.randrange(10**7):07d}"
        if choices := topic_choices(n):
            traits["topics"] = choices
        return Person(f"cust-{n:04d}", ZoneInfo(zone), currency, fx, traits, signed_up)

    def day_in_window(self, person: Person, margin: int = 1) -> dt.date:
        """A local date well inside the simulated window."""
        offset = self.rng.randint(margin, max(margin, self.days - 1))
        return (self.start + dt.timedelta(days=offset)).astimezone(person.tz).date()

    def daytime(self, person: Person, day: dt.date) -> dt.datetime:
        local = dt.time(self.rng.randint(8, 20), self.rng.randint(0, 59))
        return dt.datetime.combine(day, local, tzinfo=person.tz).astimezone(dt.UTC)

    def order(self, person: Person, when: dt.datetime) -> dict[str, Any]:
        self.orders += 1
        picks = self.rng.sample(PRODUCTS, k=self.rng.randint(1, 3))
        items: list[dict[str, Any]] = []
        total = 0.0
        for sku, name, price in picks:
            quantity = self.rng.randint(1, 2)
            items.append({"sku": sku, "name": name, "quantity": quantity})
            total += price * quantity * person.fx
        order_id = f"NW-{100000 + self.orders}"
        return {
            "type": "track",
            "customer_id": person.id,
            "event": self.order_event,
            "event_id": order_id,
            "timestamp": when.isoformat(),
            "properties": {
                "order_id": order_id,
                "total": round(total, 2),
                "currency": person.currency,
                "items": items,
            },
        }

    # ------------------------------------------------------------ roles

    def anniversary(self, person: Person, trait: str, min_years: int) -> None:
        day = self.day_in_window(person)
        if trait == "birthday":
            years = self.rng.randint(max(min_years, 18), 70)
        else:
            years = self.rng.randint(max(min_years, 1), 6)
        origin = anniversary_on(day, day.year - years)
        if trait == "signed_up_at":
            person.signed_up_at = self.daytime(person, origin)
        else:
            person.traits[trait] = origin.isoformat()

    def tier_move(self, journey: Journey, tiers: tuple[str, ...]) -> tuple[str, str] | None:
        trig = journey.trigger.tier_change
        assert trig is not None
        rank = {t: n for n, t in enumerate(tiers)}
        targets = [t for t in (trig.to or tiers) if t in rank]
        self.rng.shuffle(targets)
        for new in targets:
            if trig.direction == "down":
                options = [t for t in tiers if rank[t] > rank[new]]
            else:
                options = [t for t in tiers if rank[t] < rank[new]]
            if options:
                return self.rng.choice(options), new
        return None


@dataclass
class _Cast:
    """Who plays which part in the simulated window, decided before any record is written."""

    # who, the event they stop having, its last time, the chance they come back in the window
    lapses: list[tuple[Person, str, dt.datetime, float]] = field(default_factory=list)
    upgrades: list[tuple[Person, str, dt.datetime]] = field(default_factory=list)
    extra_events: list[tuple[Person, str, dict[str, Any]]] = field(default_factory=list)
    #: Whose orders a role writes in full (`id()` of the person): no others before or in the window.
    scripted: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class _Scene:
    """What every role works with."""

    gen: _Generator
    tiers: tuple[str, ...]
    cast: _Cast
    data: Dataset
    #: How long loyalty points last (`loyalty.yaml`'s `expire.after`), for the points_expiring role.
    expire_after: dt.timedelta = dt.timedelta(days=365)
    #: The spend that reaches the first tier above the lowest, for the tier_will_downgrade role.
    tier_min: float = 200.0


Role = Callable[[_Scene, Journey, list[Person]], None]


def _celebrate(scene: _Scene, journey: Journey, members: list[Person]) -> None:
    trig = journey.trigger.anniversary
    assert trig is not None
    for p in members:
        scene.gen.anniversary(p, trig.trait, trig.first_year())
        p.traits["email_opt_in"] = True


def _move_tier(scene: _Scene, journey: Journey, members: list[Person]) -> None:
    gen = scene.gen
    for p in members:
        move = gen.tier_move(journey, scene.tiers)
        if move is not None:
            p.traits["tier"] = move[0]
            p.traits["email_opt_in"] = True
            when = gen.daytime(p, gen.day_in_window(p))
            scene.cast.upgrades.append((p, move[1], when))


def _emit_event(scene: _Scene, journey: Journey, members: list[Person]) -> None:
    trig = journey.trigger.event
    assert trig is not None
    if awaited_match(journey, scene.gen.order_event) is not None:
        _checkouts(scene, trig.name, members)
    elif trig.name != scene.gen.order_event:  # orders come with everyone's history
        scene.cast.extra_events.extend((p, trig.name, dict(trig.where or {})) for p in members)


def awaited_match(journey: Journey, order_event: str) -> list[str] | None:
    """The `match` of the journey's first `wait_for` on an order (an abandoned cart), else None."""
    for placed in journey.placed.values():
        step = placed.step.wait_for
        if step is not None and step.event == order_event and step.match:
            return step.match
    return None


#: After a checkout: the hours until the order of that cart (None: never), one of them per shopper.
CART_OUTCOMES = (1.5, 3, 9, 20, None, None)


def _checkouts(scene: _Scene, event: str, members: list[Person]) -> None:
    """Shoppers who start a checkout: some order that cart within hours, some after a reminder, some never."""
    gen = scene.gen
    for n, p in enumerate(members):
        p.traits["email_opt_in"] = True
        when = gen.daytime(p, gen.day_in_window(p, margin=0))
        order = gen.order(p, when)
        cart = {"cart_id": f"cart-{p.id}-{n}", "items": order["properties"]["items"]}
        cart["total"] = order["properties"]["total"]
        scene.data.add(when, {**_track(p, event, when, cart), "event_id": f"checkout-{p.id}-{n}"})
        hours = CART_OUTCOMES[n % len(CART_OUTCOMES)]
        if hours is not None:
            paid = when + dt.timedelta(hours=hours)
            order["timestamp"] = paid.isoformat()
            order["properties"]["cart_id"] = cart["cart_id"]
            scene.data.add(paid, order)


def _launch(scene: _Scene, journey: Journey, members: list[Person]) -> None:
    launches = scene.data.launches
    launches[(2 + len(launches)) * 24 + 15].append(journey.id)


def _expire_points(scene: _Scene, journey: Journey, members: list[Person]) -> None:
    """A year-old order worth `min_points` or more, whose points come due for the reminder in the window."""
    trig = journey.trigger.points_expiring
    assert trig is not None
    gen = scene.gen
    for p in members:
        p.traits["email_opt_in"] = True
        due = gen.daytime(p, gen.day_in_window(p))
        when = due - (scene.expire_after - trig.within)
        order = gen.order(p, when)
        order["properties"]["total"] = float(trig.min_points + gen.rng.randint(10, 80))
        scene.data.add(when, order)


def _risk_tier(scene: _Scene, journey: Journey, members: list[Person]) -> None:
    """Two orders that reach the first tier above the lowest, the second a year and `within` before a
    day in the window; at the tier anniversary the first has left the window, so the tier is at risk."""
    trig = journey.trigger.tier_will_downgrade
    assert trig is not None
    gen = scene.gen
    for p in members:
        p.traits["email_opt_in"] = True
        scene.cast.scripted.add(id(p))
        reached = gen.daytime(p, gen.day_in_window(p)) + trig.within - dt.timedelta(days=365)
        first = reached - dt.timedelta(days=120)
        p.signed_up_at = min(p.signed_up_at, first - dt.timedelta(days=1))
        for when, share in ((first, 0.5), (reached, 0.6)):
            order = gen.order(p, when)
            order["properties"]["total"] = round(scene.tier_min * share, 2)
            scene.data.add(when, order)


#: The part a journey's group plays, by trigger kind (inactivity picks its group first, apart).
ROLES: dict[str, Role] = {
    "anniversary": _celebrate,
    "tier_change": _move_tier,
    "event": _emit_event,
    "manual": _launch,
    "points_expiring": _expire_points,
    "tier_will_downgrade": _risk_tier,
}


#: The chance a lapsed customer orders again in the window: the win-back message works, a little.
COMEBACK_MESSAGED = 0.35
COMEBACK_HELD_OUT = 0.15


def _lapse_groups(
    gen: _Generator, journeys: list[Journey], pool: list[Person], group: int, cast: _Cast
) -> None:
    """A group of their own per inactivity journey, whose lapse falls due in the window."""
    for journey in journeys:
        trig = journey.trigger.inactivity
        if trig is None:
            continue
        for p in pool[:group]:
            p.inactive = True
            lapse = dt.timedelta(days=trig.days)
            due_in = dt.timedelta(hours=gen.rng.randint(12, 24 * (gen.days - 2)))
            held_out = assignment.held_out(journey.id, p.id, journey.holdout) is not None
            comeback = COMEBACK_HELD_OUT if held_out else COMEBACK_MESSAGED
            cast.lapses.append((p, trig.event, gen.start + due_in - lapse, comeback))
        pool = pool[group:]


def _history(gen: _Generator, data: Dataset, people: list[Person], cast: _Cast) -> None:
    """Everyone's sign-up and orders before the window; the lapsing groups' last orders."""
    rng = gen.rng
    for p in people:
        data.add(
            p.signed_up_at,
            _identify(p, {**p.traits, "signed_up_at": p.signed_up_at.isoformat()}, p.signed_up_at),
        )
    quiet = {id(p) for p, _, _, _ in cast.lapses} | cast.scripted
    for p in people:
        last_history = gen.start - dt.timedelta(days=4)
        # A third of the customers stopped buying at some point (the predictions learn to tell them apart).
        span = max((last_history - p.signed_up_at).total_seconds(), 3600) * (
            rng.uniform(0.1, 0.5) if rng.random() < 0.34 else 1
        )
        for _ in range(rng.choice((0, 1, 1, 2, 3, 5, 8)) if id(p) not in quiet else 0):
            when = p.signed_up_at + dt.timedelta(seconds=rng.uniform(0, span))
            data.add(when, gen.order(p, when))
    for p, event, last, comeback in cast.lapses:
        for n in range(rng.randint(1, 3), 0, -1):
            when = last - dt.timedelta(days=40 * (n - 1))
            data.add(when, gen.order(p, when) if event == gen.order_event else _track(p, event, when, {}))
        if rng.random() < comeback:  # more come back after the win-back message than without it
            back = gen.daytime(p, (gen.start + dt.timedelta(days=gen.days - 1)).astimezone(p.tz).date())
            data.add(back, gen.order(p, back))


def _window(gen: _Generator, data: Dataset, people: list[Person], cast: _Cast) -> None:
    """What happens inside the window: orders, the events and tier moves the groups were cast for."""
    for p in people:
        if not p.inactive and id(p) not in cast.scripted and gen.rng.random() < 0.35:
            for _ in range(gen.rng.choice((1, 1, 2))):
                when = gen.daytime(p, gen.day_in_window(p, margin=0))
                data.add(when, gen.order(p, when))
    for p, event, props in cast.extra_events:
        when = gen.daytime(p, gen.day_in_window(p, margin=0))
        data.add(when, _track(p, event, when, props))
    for p, tier, when in cast.upgrades:
        data.add(when, _identify(p, {"tier": tier}, when))


def generate(
    journeys: Iterable[Journey],
    tiers: tuple[str, ...],
    *,
    customers: int,
    start: dt.datetime,
    days: int,
    seed: int,
    order_event: str = "order_placed",
    expire_after: dt.timedelta | None = None,
    tier_min: float = 200.0,
) -> Dataset:
    """Customers, history and a timeline in which every given journey's trigger fires.

    `expire_after` is how long loyalty points last (default a year); `tier_min` the spend that
    reaches the first tier above the lowest.
    """
    rng = random.Random(seed)
    gen = _Generator(rng, start, days, order_event)
    data = Dataset(start=start, hours=days * 24, customers=customers)
    people = [gen.person(n, tiers) for n in range(1, customers + 1)]
    group = max(8, customers // 20)
    ordered = sorted(journeys, key=lambda j: j.id)
    cast = _Cast()
    pool = people[:]
    rng.shuffle(pool)
    _lapse_groups(gen, ordered, pool, group, cast)
    scene = _Scene(gen, tiers, cast, data, expire_after or dt.timedelta(days=365), tier_min)
    for journey in ordered:
        if signs_up(journey):
            _newcomers(data, journey, seed, group, tiers, order_event)
            continue
        members = rng.sample(people, group)
        role = ROLES.get(journey.trigger.kind)
        if role is not None:
            role(scene, journey, members)
    _history(gen, data, people, cast)
    _window(gen, data, people, cast)
    data.history.sort(key=lambda r: r["timestamp"])
    return data


#: The event a new customer's sign-up records; journeys it triggers welcome customers of their own.
SIGN_UP_EVENT = "signed_up"
#: What a newcomer's sign-up leaves out: tiers come from spend, and a birthday would bring in another journey.
NEWCOMER_UNSET = ("tier", "birthday")


def signs_up(journey: Journey) -> bool:
    """Whether the journey is triggered by a sign-up (`SIGN_UP_EVENT`)."""
    trig = journey.trigger.event
    return trig is not None and trig.name == SIGN_UP_EVENT


def _newcomers(
    data: Dataset, journey: Journey, seed: int, group: int, tiers: tuple[str, ...], order_event: str
) -> None:
    """New customers who sign up early in the window and have not ordered yet.

    Drawn from a random source of their own and numbered after the generated
    base, so a sign-up journey leaves the rest of the story exactly as it was
    for the same seed. They place no order: an order would be thanked by
    another journey and move every customer's predictions.
    """
    days = data.hours // 24
    gen = _Generator(random.Random(f"{seed}/{journey.id}"), data.start, days, order_event)
    last_day = max(0, days - 6)  # the series runs five days after the sign-up
    for n in range(data.customers + 1, data.customers + group + 1):
        p = gen.person(n, tiers)
        day = (data.start + dt.timedelta(days=gen.rng.randint(0, last_day))).astimezone(p.tz).date()
        joined = max(gen.daytime(p, day), data.start + HOUR)
        traits = {k: v for k, v in p.traits.items() if k not in NEWCOMER_UNSET}
        traits.update(email_opt_in=True, signed_up_at=joined.isoformat())
        data.add(joined, _identify(p, traits, joined))
        data.add(joined, {**_track(p, SIGN_UP_EVENT, joined, {}), "event_id": f"signup-{p.id}"})
    data.customers += group


#: The demo's customer with mixed topic choices (in the letter, out of promotions).
MIXED = 1


def topic_choices(n: int) -> dict[str, bool]:
    """Customer n's choices in the shipped topics: every 10th reads the letter, every 7th left promotions.

    Derived from n, not drawn, so the rest of the generated story stays the same.
    """
    choices = {}
    if n % 10 == 0 or n == MIXED:
        choices["newsletter"] = True
    if n % 7 == 0 or n == MIXED:
        choices["promotions"] = False
    return choices


def _identify(p: Person, traits: dict[str, Any], when: dt.datetime) -> dict[str, Any]:
    return {"type": "identify", "customer_id": p.id, "traits": traits, "timestamp": when.isoformat()}


def _track(p: Person, event: str, when: dt.datetime, props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "track",
        "customer_id": p.id,
        "event": event,
        "timestamp": when.isoformat(),
        "properties": props,
    }
