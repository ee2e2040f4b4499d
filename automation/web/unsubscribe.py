"""The unsubscribe link in every marketing email: a plain page, then one POST.

The token names one delivery and is signed (`automation.core.tokens`), so nobody
can unsubscribe someone else. GET only shows a button, because mail scanners
follow links; POST (the button, or a mail client's RFC 8058 one-click
`List-Unsubscribe=One-Click`) suppresses the address that delivery went to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from automation.core.statuses import Channel
from automation.core.tokens import verify_unsubscribe_token
from automation.store import suppressions
from automation.store.models import Customer, Delivery

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 4rem auto; line-height: 1.5">
<h1>{title}</h1>
{body}
</body></html>
"""

CONFIRM = PAGE.format(
    title="Unsubscribe",
    body=(
        "<p>Stop receiving these messages at this address?</p>\n"
        '<form method="post" action=""><button type="submit">Unsubscribe</button></form>'
    ),
)
DONE = PAGE.format(
    title="You are unsubscribed", body="<p>You will not receive these messages at this address any more.</p>"
)
NOT_FOUND = PAGE.format(title="Link not valid", body="<p>This unsubscribe link is not valid.</p>")


def delivery_for(token: str, secrets: Sequence[str], s: Session) -> Delivery | None:
    """The delivery a valid token names, if it exists."""
    delivery_id = verify_unsubscribe_token(token, secrets)
    return s.get(Delivery, delivery_id) if delivery_id is not None else None


def unsubscribe(s: Session, d: Delivery, now: dt.datetime) -> bool:
    """Suppress the address the delivery went to (else the customer's current one)."""
    address = d.address
    if not address:
        customer = s.get(Customer, d.customer_id)
        if customer is not None:
            address = customer.email if d.channel == Channel.EMAIL else customer.phone
    if not address:
        return False
    suppressions.suppress(s, d.channel, address, "unsubscribe", "link", now)
    d.unsubscribed_at = d.unsubscribed_at or now
    return True
