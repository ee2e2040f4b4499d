"""Email through the official SendGrid SDK (v3 mail send), to any API host."""

from __future__ import annotations

import json
from typing import Any
from urllib.error import URLError

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from automation.core.messages import EmailBatch, EmailMessage, Recipient
from automation.errors import PermanentProviderError, TransientProviderError
from automation.providers.hints import retry_after_s


def _errors(body: Any) -> list[dict[str, Any]]:
    try:
        parsed = json.loads(body.decode() if isinstance(body, bytes) else body or "{}")
    except (ValueError, AttributeError):
        return []
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    return [e for e in errors or [] if isinstance(e, dict)]


def _personalization(r: Recipient) -> dict[str, Any]:
    to: dict[str, str] = {"email": r.to}
    if r.to_name:
        to["name"] = r.to_name
    out: dict[str, Any] = {"to": [to], "subject": r.subject, "custom_args": dict(r.custom_args)}
    if r.headers:
        out["headers"] = dict(r.headers)
    if r.substitutions:
        out["substitutions"] = dict(r.substitutions)
    return out


def message_body(batch: EmailBatch) -> dict[str, Any]:
    """The v3 /mail/send request body: one personalization per recipient, the body shared."""
    sender: dict[str, str] = {"email": batch.from_email}
    if batch.from_name:
        sender["name"] = batch.from_name
    body: dict[str, Any] = {
        "personalizations": [_personalization(r) for r in batch.recipients],
        "from": sender,
        "content": [
            {"type": "text/plain", "value": batch.text},
            {"type": "text/html", "value": batch.html},
        ],
    }
    if batch.categories:
        body["categories"] = list(batch.categories)
    return body


class SendGridProvider:
    """Sends one batch per request (up to 1,000 recipients); every call has a timeout."""

    name = "sendgrid"

    def __init__(self, api_key: str, host: str, timeout_s: float) -> None:
        self.client = SendGridAPIClient(api_key=api_key, host=host)
        self.timeout_s = timeout_s

    def problem(self, message: EmailMessage) -> str | None:
        """SendGrid takes any message the worker builds."""
        return None

    def send_email(self, batch: EmailBatch) -> str:
        body = message_body(batch)
        try:
            response = self.client.client.mail.send.post(request_body=body, timeout=self.timeout_s)
        except HTTPError as exc:
            raise self._classify(exc) from None
        except (TimeoutError, URLError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TransientProviderError(f"sendgrid unreachable: {reason}") from None
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        return str(message_id or "")

    @staticmethod
    def _classify(exc: HTTPError) -> Exception:
        status = int(exc.status_code)
        errors = _errors(exc.body)
        text = "; ".join(str(e.get("message", "")) for e in errors) or f"HTTP {status}"
        if status == 429 or status >= 500:
            return TransientProviderError(f"sendgrid {status}: {text}", retry_after_s(exc.headers))
        fields = [str(e.get("field") or "") for e in errors]
        about_recipient = any(f.startswith("personalizations") for f in fields)
        invalid_recipient = any(f.startswith("personalizations") and "email" in f for f in fields)
        return PermanentProviderError(
            f"sendgrid {status}: {text}",
            suppress_reason="invalid" if invalid_recipient else None,
            about_recipient=about_recipient,
        )
