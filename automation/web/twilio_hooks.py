"""Twilio's status callbacks and inbound messages: verify `X-Twilio-Signature`, parse.

Twilio signs the full public URL it called (with its query string) followed by
the sorted form parameters, with HMAC-SHA1 keyed by the account's auth token;
the SDK's `RequestValidator` checks it. Behind a proxy the URL we see is not
the one Twilio called, so it is rebuilt from AUTOMATION_PUBLIC_URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

from automation.web.sendgrid_events import Rejected

SIGNATURE = "X-Twilio-Signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


class SignedTwilioRequests:
    """Verifies and parses form posts from Twilio."""

    def __init__(self, auth_token: str | None, public_url: str) -> None:
        self.validator = RequestValidator(auth_token) if auth_token else None
        self.public_url = public_url.rstrip("/")

    def form(self, headers: Any, path: str, query: str, body: bytes) -> dict[str, str]:
        """The posted parameters, once the signature over them checks out; else `Rejected`."""
        if self.validator is None:
            raise Rejected(403, "TWILIO_AUTH_TOKEN is not configured")
        signature = headers.get(SIGNATURE)
        if not signature:
            raise Rejected(401, "missing X-Twilio-Signature")
        content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise Rejected(400, "expected a form post")
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
        except (UnicodeDecodeError, ValueError):
            raise Rejected(400, "malformed form body") from None
        params = dict(pairs)
        if len(params) != len(pairs):
            raise Rejected(400, "repeated form parameter")
        url = self.public_url + path + (f"?{query}" if query else "")
        if not self.validator.validate(url, params, signature):
            raise Rejected(401, "bad signature")
        return params
