"""Signing webhook requests exactly as SendGrid and Twilio do, for tests.

SendGrid: ECDSA P-256 / SHA-256 over `timestamp + raw body`, base64 DER
signature; the public key is shown as base64 DER (SubjectPublicKeyInfo).
Twilio: HMAC-SHA1 over the URL and the sorted form parameters, keyed by the
auth token (the SDK's `RequestValidator.compute_signature`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator

from automation.web.sendgrid_events import SIGNATURE, TIMESTAMP

TWILIO_TOKEN = "test-token"
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)  # the web clock of the in-process tests
PUBLIC_URL = "https://hooks.example.com"


class SendGridSigner:
    """A P-256 key pair standing in for the one SendGrid holds."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key(self) -> str:
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def headers(self, body: bytes, at: dt.datetime) -> dict[str, str]:
        timestamp = str(int(at.timestamp()))
        signature = self.key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            SIGNATURE: base64.b64encode(signature).decode(),
            TIMESTAMP: timestamp,
            "Content-Type": "application/json",
        }


def sendgrid_event(
    kind: str, event_id: str, at: dt.datetime, delivery_id: int | None, **extra: Any
) -> dict[str, Any]:
    """One event as SendGrid posts it; custom args come back as top-level keys."""
    event: dict[str, Any] = {
        "email": "ada@example.com",
        "timestamp": int(at.timestamp()),
        "event": kind,
        "sg_event_id": event_id,
        "sg_message_id": "sg-1.filter0001",
        "journey_id": "post_purchase_thanks",
        **extra,
    }
    if delivery_id is not None:
        event["delivery_id"] = str(delivery_id)
    return event


def batch(*events: dict[str, Any]) -> bytes:
    return json.dumps(list(events)).encode()


def twilio_post(path: str, params: dict[str, str], token: str = TWILIO_TOKEN) -> tuple[bytes, dict[str, str]]:
    """A form body and headers signed for PUBLIC_URL + path (path may carry a query)."""
    signature = RequestValidator(token).compute_signature(PUBLIC_URL + path, params)
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    return urlencode(params).encode(), headers
