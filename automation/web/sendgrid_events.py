"""SendGrid's signed Event Webhook: verify, parse the batch, record it.

SendGrid signs `timestamp + raw body` with ECDSA P-256 / SHA-256 and sends the
base64 signature and the timestamp in two headers. A request is refused when
the signature does not verify with the configured public key, or when its
timestamp is further than the tolerance from our clock (a replay of an old
request). A replay inside the window is harmless: `sg_event_id` is unique.
The signature is checked over the raw bytes as received (the SDK's helper wants
text), so a signed body that is not UTF-8 is a malformed batch (400), not a
forgery.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sendgrid.helpers.eventwebhook import EventWebhook

from automation.core.feedback import Feedback, MalformedEvent, sendgrid_event
from automation.errors import ConfigError

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


class Rejected(Exception):
    """A webhook request we refuse; `status` is the HTTP status, `detail` more JSON to answer."""

    def __init__(self, status: int, reason: str, **detail: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.detail = detail


def load_public_key(value: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it (base64 DER), or as a PEM block."""
    text = value.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
        else:
            key = EventWebhook().convert_public_key_to_ecdsa(text)
    except (ValueError, TypeError):
        raise ConfigError("SENDGRID_WEBHOOK_PUBLIC_KEY is not a valid public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("SENDGRID_WEBHOOK_PUBLIC_KEY is not an elliptic-curve (ECDSA) key")
    return key


@dataclass
class Batch:
    """One posted batch: its valid events (by position) and the reasons for the others."""

    size: int
    valid: list[Feedback] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


class SignedEventWebhook:
    """Checks one request's signature and freshness and parses its events."""

    def __init__(self, public_key: ec.EllipticCurvePublicKey | None, tolerance: dt.timedelta) -> None:
        self.public_key = public_key
        self.tolerance = tolerance

    def verify(self, headers: Any, body: bytes, now: dt.datetime) -> None:
        """Raise `Rejected` unless the body is signed by SendGrid, recently."""
        if self.public_key is None:
            raise Rejected(403, "SENDGRID_WEBHOOK_PUBLIC_KEY is not configured")
        signature, timestamp = headers.get(SIGNATURE), headers.get(TIMESTAMP)
        if not signature or not timestamp:
            raise Rejected(401, "missing signature headers")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise Rejected(401, "bad timestamp header")
        # Compared as numbers: a timestamp past year 9999 is merely stale, not an error.
        if abs(now.timestamp() - int(timestamp)) > self.tolerance.total_seconds():
            raise Rejected(401, "stale timestamp")
        try:
            signed = base64.b64decode(signature, validate=True)
            self.public_key.verify(signed, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, ValueError, InvalidSignature):
            raise Rejected(401, "bad signature") from None

    @staticmethod
    def parse(body: bytes) -> Batch:
        """The batch's valid events and why the others were refused; `Rejected` if it is no batch."""
        try:
            events = json.loads(body)
        except (ValueError, RecursionError):
            raise Rejected(400, "body is not JSON") from None
        if not isinstance(events, list):
            raise Rejected(400, "body is not a JSON array of events")
        batch = Batch(size=len(events))
        for index, raw in enumerate(events):
            try:
                batch.valid.append(sendgrid_event(raw, index))
            except MalformedEvent as exc:
                batch.refused.append((index, str(exc)))
        return batch
