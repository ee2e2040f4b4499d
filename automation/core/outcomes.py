"""What the provider said about one message, as one word. Pure.

A delivery keeps the provider's furthest status (`provider_status`) and the
instants of its engagement and complaints (`opened_at`, `clicked_at`,
`complained_at`, `unsubscribed_at`). Reports show one word for it, the most
telling that applies, in the order of `SAID`: a complaint says more than a
click, a click more than an open, an open more than `delivered`. The SQL form
of the same rule is built from `SAID` too (`automation.insight.reporting.said_sql`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: Provider statuses (SendGrid's and Twilio's) that mean the message reached the recipient.
DELIVERED = frozenset({"delivered"})
#: ... that the recipient's server or carrier refused it.
BOUNCED = frozenset({"bounced", "blocked", "undelivered"})
#: ... that the provider never tried (a suppressed or invalid address, a failed SMS).
DROPPED = frozenset({"dropped", "failed"})


@dataclass(frozen=True)
class Said:
    """One word and when it applies: a provider status among `statuses`, or the `flag` column set."""

    word: str
    statuses: frozenset[str] = frozenset()
    flag: str | None = None


#: The words in precedence order: the first that applies is what the provider said.
SAID: tuple[Said, ...] = (
    Said("complained", flag="complained_at"),
    Said("unsubscribed", flag="unsubscribed_at"),
    Said("bounced", statuses=BOUNCED),
    Said("dropped", statuses=DROPPED),
    Said("clicked", flag="clicked_at"),
    Said("opened", flag="opened_at"),
    Said("delivered", statuses=DELIVERED),
)
WORDS = tuple(s.word for s in SAID)
#: Flags that prove the message reached the recipient, whatever status came last.
REACHED_FLAGS = ("opened_at", "clicked_at", "complained_at", "unsubscribed_at")


def provider_said(status: str | None, flags: Mapping[str, object]) -> str | None:
    """The one word for a delivery: a word of `SAID`, else its raw provider status (None: nothing yet)."""
    for said in SAID:
        if (said.flag is not None and flags.get(said.flag) is not None) or status in said.statuses:
            return said.word
    return status
