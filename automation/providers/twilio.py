"""SMS through the official Twilio SDK, to any API base URL."""

from __future__ import annotations

from requests.exceptions import RequestException
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from automation.core.messages import SmsMessage
from automation.errors import PermanentProviderError, TransientProviderError

STOPPED = 21610  # the recipient replied STOP
INVALID_NUMBER = 21211
NOT_MOBILE = 21614
TOO_MANY_REQUESTS = 20429


class TwilioProvider:
    """From a phone number, or from a Messaging Service when the sender is an `MG...` SID."""

    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, base_url: str, timeout_s: float) -> None:
        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout_s))
        self.client.api.base_url = base_url.rstrip("/")

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
            raise self._classify(exc) from None
        except RequestException as exc:
            raise TransientProviderError(f"twilio unreachable: {type(exc).__name__}") from None
        return str(created.sid)

    @staticmethod
    def _classify(exc: TwilioRestException) -> Exception:
        text = f"twilio {exc.status} (code {exc.code}): {exc.msg}"
        if exc.status == 429 or exc.code == TOO_MANY_REQUESTS or exc.status >= 500:
            return TransientProviderError(text)
        if exc.code == STOPPED:
            return PermanentProviderError(text, suppress_reason="stop")
        if exc.code in (INVALID_NUMBER, NOT_MOBILE):
            return PermanentProviderError(text, suppress_reason="invalid")
        return PermanentProviderError(text)
