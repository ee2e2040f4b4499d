"""The programme's part of ingest: events into the points ledger and tiers, in the batch's transaction.

Both writers of ingest (the ORM one and PostgreSQL's bulk one) call `apply_tracks`
before they insert the batch's events: earning, redemption and refund events
change the ledger; the window measure may move the tier, which adds a
`tier_changed` event to the batch and sets the customer's `tier`. A record the
ledger refuses raises `PointsRefusal`, so that its batch is retried record by
record and only that record is lost. A cause already in the ledger (a
re-ingested file) is skipped. Events are applied in the order they arrive,
which `loyalty recompute` matches only for a file sorted by time (see `loyalty.replay`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from automation.core.earning import BIRTHDAY_EVENT, PointsRefused, apply_event
from automation.core.programme import Programme
from automation.core.records import Identify, Record, Track, tier_event
from automation.core.tiering import decide, measure
from automation.errors import PointsRefusal
from automation.loyalty.accounts import Account, applied, load, save
from automation.store.models import Customer, Event
from automation.store.sqlutil import insert_ignore, update_many

#: The ingest summary's warning for an identify that sets `tier` while the programme owns it.
TIER_OWNED = "tier is set by the loyalty programme (loyalty.yaml): the ingested tier is ignored"


@dataclass
class Outcome:
    """What the programme adds to a batch: `tier_changed` events, and each changed customer's tier."""

    events: list[Track] = field(default_factory=list)
    tiers: dict[str, str] = field(default_factory=dict)


def relevant(programme: Programme, event: str) -> bool:
    points = programme.points
    if points is None:
        return False
    named = (points.redeem_event, points.refund_event, BIRTHDAY_EVENT)
    return event in named or points.rule_for(event) is not None


def taken(programme: Programme, tracks: Sequence[Track]) -> set[str]:
    """The names of these events the programme's ledger takes, each name judged once (a batch repeats few)."""
    return {name for name in {t.event for t in tracks} if relevant(programme, name)}


def takes_any(programme: Programme | None, tracks: Sequence[Track]) -> bool:
    """Whether the programme's ledger takes any of these events (`apply_tracks` reads accounts then)."""
    return programme is not None and bool(taken(programme, tracks))


def owned_traits(programme: Programme | None, records: Sequence[Record]) -> list[Record]:
    """The records with the traits the programme owns (`tier`, when it defines tiers) left out."""
    if programme is None or programme.tiers is None:
        return list(records)
    return [
        dataclasses.replace(r, traits={k: v for k, v in r.traits.items() if k != "tier"})
        if isinstance(r, Identify) and "tier" in r.traits
        else r
        for r in records
    ]


def _cause(programme: Programme, track: Track) -> str | None:
    points = programme.points
    assert points is not None
    if track.event == points.redeem_event:
        return f"redeem:{track.event_key}"
    if track.event == points.refund_event:
        return f"refund:{track.event_key}"
    return None


def retier(programme: Programme, account: Account, at: dt.datetime, out: Outcome) -> None:
    """Re-judge the account's tier at `at`; a change is recorded in `out`."""
    tiers = programme.tiers
    if tiers is None:
        return
    before = account.tier
    review = before.review_at
    if review is not None and review <= at:
        # A review is judged on the measure at its own instant, however late the tick that makes it.
        account.tier = decide(
            tiers, before, measure(tiers, account.ledger.lots, review), review, account.zone
        )
    account.tier = decide(tiers, account.tier, measure(tiers, account.ledger.lots, at), at, account.zone)
    new = account.tier.tier
    if new is None or new == before.tier:
        return
    out.tiers[account.customer_id] = new
    # A customer new to the programme starts at the lowest level: a first order straight to gold
    # is a move up from it (so `direction: up` matches), and one that stays there is no change.
    old = before.tier if before.tier is not None else tiers.order()[0]
    if new != old:
        out.events.append(tier_event(account.customer_id, old, new, at))


def apply_one(programme: Programme, account: Account, track: Track, out: Outcome) -> None:
    """One event into one account's ledger, then its tier; `PointsRefusal` when the ledger refuses it."""
    assert programme.points is not None
    try:
        account.txns += apply_event(
            programme.points,
            account.ledger,
            track.event,
            track.event_key,
            track.timestamp,
            track.properties,
            programme.multiplier(account.tier.tier),
            account.zone,
        )
    except PointsRefused as exc:
        raise PointsRefusal(str(exc)) from None
    retier(programme, account, track.timestamp, out)


def write_outcome(session: Session, out: Outcome, now: dt.datetime) -> None:
    """Outside ingest (the tick, `loyalty recompute`): store the tier events and set the customers' tier."""
    rows = [{**t.row(now), "customer_id": t.customer_id} for t in out.events]
    insert_ignore(session, Event.__table__, rows, ["event_key"])
    tiers = [{"id": cid, "tier": tier, "updated_at": now} for cid, tier in out.tiers.items()]
    update_many(session, Customer.__table__, tiers)


def apply_tracks(
    session: Session,
    programme: Programme | None,
    tracks: Sequence[Track],
    zones: dict[str, str | None],
    now: dt.datetime,
) -> Outcome:
    """Apply the batch's events to the ledger and tiers; `zones` holds each customer's time zone."""
    out = Outcome()
    if programme is None or programme.points is None:
        return out
    names = taken(programme, tracks)
    mine = [t for t in tracks if t.event in names]
    if not mine:
        return out
    accounts = load(session, {t.customer_id: zones.get(t.customer_id) for t in mine})
    causes = {(t.customer_id, key) for t in mine if (key := _cause(programme, t))}
    done = applied(session, causes)
    for t in mine:
        if (t.customer_id, _cause(programme, t)) not in done:
            apply_one(programme, accounts[t.customer_id], t, out)
    save(session, accounts.values(), now)
    return out
