"""Forgetting a customer: their personal data goes, the counts that journeys report stay true.

Deleted: the customer row (traits, addresses, names, order facts), their
events and event statistics, their topic choices, their loyalty rows (account,
lots, transactions: a balance is data about them, and a later identify must not
inherit it), and any anonymous ids linked to them. Their
enrollments end (`erased`) and lose their context (it quotes event
properties); pending deliveries are skipped (`erased`); every delivery,
enrollment and test-send row stays, with no address and a customer id replaced by a fresh
random pseudonym, so a later identify of the same id starts an empty profile
that nothing links to the old one (a split decision names only its enrollment, so it stays
with it). Suppressions of their addresses are kept
only as one-way hashes, which the suppression check still matches. Running it
again finds nothing and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter
from typing import Any, cast

from sqlalchemy import CursorResult, Executable, delete, select, update
from sqlalchemy.orm import Session

from automation.core.statuses import PENDING, DeliveryStatus, EnrollmentState
from automation.store.models import (
    AnonymousEvent,
    AnonymousId,
    Conversion,
    ConversionQueue,
    Customer,
    CustomerEventStat,
    Delivery,
    Enrollment,
    EnrollmentWait,
    EntryPending,
    Event,
    LoyaltyAccount,
    LoyaltyLot,
    LoyaltyTransaction,
    PreferenceUndo,
    ProviderEvent,
    Suppression,
    TestSend,
    TopicChoice,
)
from automation.store.suppressions import address_hash

REASON = "erased"


REMOVED = ("profile", "events", "anonymous_ids", "topic_choices", "loyalty_rows")
CHANGED = ("enrollments_ended", "deliveries_skipped", "deliveries_anonymised", "suppressions_hashed")


class Forgotten(Counter[str]):
    """How many of each thing were removed (`REMOVED`) or changed (`CHANGED`)."""

    def lines(self) -> list[str]:
        return [f"{name.replace('_', ' ')}: {self[name]}" for name in (*REMOVED, *CHANGED)]

    @property
    def anything(self) -> bool:
        return any(self.values())


def _addresses(s: Session, customer: Customer | None, customer_id: str) -> set[tuple[str, str]]:
    found = set()
    if customer is not None:
        found |= {("email", customer.email), ("sms", customer.phone)}
    found |= set(
        s.execute(
            select(Delivery.channel, Delivery.address).where(
                Delivery.customer_id == customer_id, Delivery.address.is_not(None)
            )
        ).tuples()
    )
    return {(channel, address) for channel, address in found if address}


def _hash_suppressions(s: Session, addresses: set[tuple[str, str]]) -> int:
    hashed = 0
    for channel, address in sorted(addresses):
        row = s.scalar(
            select(Suppression).where(Suppression.channel == channel, Suppression.address == address)
        )
        if row is None:
            continue
        digest = address_hash(address)
        twin = select(Suppression.id).where(Suppression.channel == channel, Suppression.address == digest)
        if s.scalar(twin) is None:
            row.address = digest
        else:
            s.delete(row)
        hashed += 1
    return hashed


def _count(s: Session, statement: Executable) -> int:
    return cast(CursorResult[Any], s.execute(statement)).rowcount


def forget(s: Session, customer_id: str, now: dt.datetime) -> Forgotten:
    """Erase the customer inside the caller's transaction."""
    done = Forgotten()
    customer = s.get(Customer, customer_id, with_for_update=s.get_bind().dialect.name == "postgresql")
    done["suppressions_hashed"] = _hash_suppressions(s, _addresses(s, customer, customer_id))
    pseudonym = "erased:" + secrets.token_hex(16)
    done["enrollments_ended"] = _count(
        s,
        update(Enrollment)
        .where(Enrollment.customer_id == customer_id, Enrollment.state == EnrollmentState.ACTIVE)
        .values(
            state=EnrollmentState.EXITED, exit_reason=REASON, exited_at=now, next_at=None, next_step_id=None
        ),
    )
    s.execute(delete(EnrollmentWait).where(EnrollmentWait.customer_id == customer_id))
    s.execute(delete(EntryPending).where(EntryPending.customer_id == customer_id))
    done["deliveries_skipped"] = _count(
        s,
        update(Delivery)
        .where(Delivery.customer_id == customer_id, Delivery.status.in_(PENDING))
        .values(status=DeliveryStatus.SKIPPED, reason=REASON, updated_at=now),
    )
    delivery_ids = select(Delivery.id).where(Delivery.customer_id == customer_id).scalar_subquery()
    s.execute(update(ProviderEvent).where(ProviderEvent.delivery_id.in_(delivery_ids)).values(payload={}))
    done["deliveries_anonymised"] = _count(
        s,
        update(Delivery)
        .where(Delivery.customer_id == customer_id)
        .values(customer_id=pseudonym, address=None, updated_at=now),
    )
    s.execute(
        update(Enrollment)
        .where(Enrollment.customer_id == customer_id)
        .values(customer_id=pseudonym, context={})
    )
    s.execute(update(TestSend).where(TestSend.customer_id == customer_id).values(customer_id=pseudonym))
    done["events"] = _count(s, delete(Event).where(Event.customer_id == customer_id))
    s.execute(delete(CustomerEventStat).where(CustomerEventStat.customer_id == customer_id))
    linked = select(AnonymousId.anonymous_id).where(AnonymousId.customer_id == customer_id).scalar_subquery()
    s.execute(delete(AnonymousEvent).where(AnonymousEvent.anonymous_id.in_(linked)))
    done["anonymous_ids"] = _count(s, delete(AnonymousId).where(AnonymousId.customer_id == customer_id))
    done["topic_choices"] = _count(s, delete(TopicChoice).where(TopicChoice.customer_id == customer_id))
    s.execute(delete(PreferenceUndo).where(PreferenceUndo.customer_id == customer_id))
    done["loyalty_rows"] = sum(
        _count(s, delete(table).where(table.customer_id == customer_id))
        for table in (LoyaltyTransaction, LoyaltyLot, LoyaltyAccount)
    )
    if customer is not None:
        s.delete(customer)
        done["profile"] = 1
    # The conversion ledger and its queue copy the id: its rows go now, not at the next fold
    # (which would find nothing of it either; the pseudonym is queued in its place).
    s.execute(delete(Conversion).where(Conversion.customer_id == customer_id))
    s.execute(delete(ConversionQueue).where(ConversionQueue.customer_id == customer_id))
    return done
