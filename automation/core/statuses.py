"""The closed sets of the ledger: delivery, enrollment and campaign statuses, channels.

Each value is the string stored in the database and shown to users (a public
contract), so a `StrEnum` compares equal to it and a misspelling is a type error.
Reports and commands iterate these enums (and the tuples below) instead of
keeping lists of their own.
"""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    """Where one message stands in the ledger."""

    QUEUED = "queued"
    CLAIMED = "claimed"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    SUPPRESSED = "suppressed"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNKNOWN = "unknown"
    HELD_OUT = "held_out"  # an experiment's holdout or the global control group: made, never sent

    @property
    def reported(self) -> DeliveryStatus:
        """The status a report shows: a claim is the worker's first moment of sending."""
        return DeliveryStatus.SENDING if self is DeliveryStatus.CLAIMED else self


#: Waiting for its due instant or its worker, not yet claimed: what an exit or a cancel skips.
PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)
#: Not settled yet: pending, or in a worker's hands.
UNSETTLED = (*PENDING, DeliveryStatus.CLAIMED, DeliveryStatus.SENDING)
#: The columns of a report, in order (a claimed message is shown as sending).
REPORTED = tuple(s for s in DeliveryStatus if s is not DeliveryStatus.CLAIMED)


class EnrollmentState(StrEnum):
    """Where one customer stands in one journey occurrence."""

    ACTIVE = "active"
    COMPLETED = "completed"
    EXITED = "exited"
    CANCELLED = "cancelled"


#: States in which nothing more may be sent.
ENDED_EARLY = (EnrollmentState.EXITED, EnrollmentState.CANCELLED)


class CampaignStatus(StrEnum):
    """A manual campaign's progress."""

    ENROLLING = "enrolling"  # launched from the dashboard: the scheduler's ticks enroll the audience
    LAUNCHING = "launching"
    LAUNCHED = "launched"
    CANCELLED = "cancelled"


class Channel(StrEnum):
    """How a message reaches a person."""

    EMAIL = "email"
    SMS = "sms"

    @property
    def address_name(self) -> str:
        """What the address of this channel is called, for reasons shown to users."""
        return "email address" if self is Channel.EMAIL else "phone number"
