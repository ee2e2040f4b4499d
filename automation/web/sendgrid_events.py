"""SendGrid's signed Event Webhook: verify, parse the batch, record it.

SendGrid signs `timestamp + raw body` with ECDSA P-256 / SHA-256 and sends the
base64 signature and the timestamp in two headers. A request is refused when
the signature does not verify with the configured public key, or when its
timestamp is further than the tolerance from our clock (a replay of an old
request). A replay inside the window is harmless: `sg_event_id` is unique.
"""

from __future__ import annotations

import binascii
import datetime as dt
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sendgrid.helpers.eventwebhook import EventWebhook

from automation.core.feedback import Feedback, MalformedEvent, sendgrid_event
from automation.errors import ConfigError

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


class Rejected(Exception):
    """A webhook request we refuse; `status` is the HTTP status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


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
        signed_at = dt.datetime.fromtimestamp(int(timestamp), dt.UTC)
        if abs(now - signed_at) > self.tolerance:
            raise Rejected(401, "stale timestamp")
        try:
            payload = body.decode("utf-8")
            valid = EventWebhook().verify_signature(payload, signature, timestamp, self.public_key)
        except (UnicodeDecodeError, binascii.Error, ValueError):
            valid = False
        if not valid:
            raise Rejected(401, "bad signature")

    @staticmethod
    def parse(body: bytes) -> list[Feedback]:
        """The batch's events; `Rejected` (400) if any of them is malformed."""
        try:
            batch = json.loads(body)
        except ValueError:
            raise Rejected(400, "body is not JSON") from None
        if not isinstance(batch, list):
            raise Rejected(400, "body is not a JSON array of events")
        try:
            return [sendgrid_event(raw, i) for i, raw in enumerate(batch)]
        except MalformedEvent as exc:
            raise Rejected(400, str(exc)) from None
