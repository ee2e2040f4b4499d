"""Providers by channel, built from settings."""

from __future__ import annotations

from automation.config import Settings
from automation.errors import ConfigError
from automation.providers.base import EmailProvider, SmsProvider
from automation.providers.outbox import OutboxProvider
from automation.providers.stub import RecordingProvider


def _either_channel(kind: str, settings: Settings, channel: str) -> OutboxProvider | RecordingProvider:
    """The providers that serve email and SMS alike: the outbox folder and the recording stub."""
    if kind == "outbox":
        return OutboxProvider(settings.outbox_dir)
    if kind == "stub":
        return RecordingProvider()
    raise ConfigError(f"{kind} cannot send {channel}")


def email_provider(settings: Settings) -> EmailProvider:
    kind = settings.resolved_email_provider()
    if kind == "sendgrid":
        if settings.sendgrid_api_key is None:
            raise ConfigError("AUTOMATION_EMAIL_PROVIDER is sendgrid but SENDGRID_API_KEY is not set")
        from automation.providers.sendgrid import SendGridProvider

        return SendGridProvider(
            settings.sendgrid_api_key.get_secret_value(),
            settings.sendgrid_api_host,
            settings.provider_timeout_s,
        )
    return _either_channel(kind, settings, "email")


def sms_provider(settings: Settings) -> SmsProvider:
    kind = settings.resolved_sms_provider()
    if kind == "twilio":
        if not settings.twilio_account_sid or settings.twilio_auth_token is None:
            raise ConfigError(
                "AUTOMATION_SMS_PROVIDER is twilio but TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN are not set"
            )
        from automation.providers.twilio import TwilioProvider

        return TwilioProvider(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            settings.twilio_api_base_url,
            settings.provider_timeout_s,
        )
    return _either_channel(kind, settings, "SMS")
