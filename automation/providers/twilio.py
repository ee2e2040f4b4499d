"""SMS through the official Twilio SDK, to any API base URL.

The SDK's `TwilioRestException` carries no response headers, so the HTTP
client here keeps each thread's last response headers: a 429's `Retry-After`
reaches the retry as it does for SendGrid.
"""

from __future__ import annotations

import threading
from typing import Any

from requests.exceptions import RequestException
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from automation.core.messages import SmsMessage
from automation.errors import PermanentProviderError, TransientProviderError
from automation.providers.hints import retry_after_s

STOPPED = 21610  # the recipient replied STOP
INVALID_NUMBER = 21211
NOT_MOBILE = 21614
TOO_MANY_REQUESTS = 20429


class HeadersKeepingClient(TwilioHttpClient):
    """Twilio's own HTTP client, keeping the last response's headers per thread."""

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._local = threading.local()

    def request(self, *args: Any, **kwargs: Any) -> Response:
        self._local.headers = None
        response = super().request(*args, **kwargs)
        self._local.headers = response.headers
        return response

    @property
    def last_headers(self) -> Any:
        """This thread's last response headers (None when no answer came)."""
        return getattr(self._local, "headers", None)


class TwilioProvider:
    """From a phone number, or from a Messaging Service when the sender is an `MG...` SID."""

    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, base_url: str, timeout_s: float) -> None:
        self.http = HeadersKeepingClient(timeout=timeout_s)
        self.client = Client(account_sid, auth_token, http_client=self.http)
        self.client.api.base_url = base_url.rstrip("/")

    def problem(self, message: SmsMessage) -> str | None:
        """Twilio needs a sender: a number or a Messaging Service."""
        return None if message.sender else "AUTOMATION_SMS_FROM is not set"

    def send_sms(self, message: SmsMessage) -> str:
        sender = (
            {"messaging_service_sid": message.sender}
            if message.sender.startswith("MG")
            else {"from_": message.sender}
        )
        extra = {"status_callback": message.status_callback} if message.status_callback else {}
        try:
            created = self.client.messages.create(to=message.to, body=message.body, **sender, **extra)
        except TwilioRestException as exc:
            raise self._classify(exc, self.http.last_headers) from None
        except RequestException as exc:
            raise TransientProviderError(f"twilio unreachable: {type(exc).__name__}") from None
        return str(created.sid)

    @staticmethod
    def _classify(exc: TwilioRestException, headers: Any) -> Exception:
        text = f"twilio {exc.status} (code {exc.code}): {exc.msg}"
        if exc.status == 429 or exc.code == TOO_MANY_REQUESTS or exc.status >= 500:
            return TransientProviderError(text, retry_after_s(headers))
        if exc.code == STOPPED:
            return PermanentProviderError(text, suppress_reason="stop")
        if exc.code in (INVALID_NUMBER, NOT_MOBILE):
            return PermanentProviderError(text, suppress_reason="invalid")
        return PermanentProviderError(text)
