"""Settings from the environment (and a `.env` file).

Nothing reads settings at import time: entry points call `load_settings()` and
pass the result down.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from automation.errors import ConfigError, UnsafeSettings

ProviderName = Literal["sendgrid", "twilio", "outbox", "stub"]
DEFAULT_UNSUBSCRIBE_SECRET = "change-me-in-production"
MIN_SECRET_LENGTH = 32
LOCAL_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "::1", "[::1]")
DAY_S = 86_400
DAY_MS = DAY_S * 1000
REDIS_SCHEMES = ("redis", "rediss", "unix")

# Set but empty is refused for these, instead of meaning "unset" (the default):
# an empty secret must never fall back to the published default.
NEVER_EMPTY = frozenset({"AUTOMATION_UNSUBSCRIBE_SECRET"})


class _EmptyValues(PydanticBaseSettingsSource):
    """The `NEVER_EMPTY` variables that the environment or `.env` sets to an empty value."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.sources = (
            DotEnvSettingsSource(settings_cls, env_ignore_empty=False),
            EnvSettingsSource(settings_cls, env_ignore_empty=False),
        )

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for source in self.sources:  # the environment wins over .env
            found.update(source())
        return {name: value for name, value in found.items() if name in NEVER_EMPTY and value == ""}


class Settings(BaseSettings):
    """Every knob, named as in the README's configuration table; secrets are `SecretStr`, never printed."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    database_url: str = Field("sqlite:///automation.db", alias="DATABASE_URL")
    redis_url: str | None = Field(None, alias="REDIS_URL")
    redis_namespace: str = Field("automation", alias="AUTOMATION_REDIS_NAMESPACE")

    sendgrid_api_key: SecretStr | None = Field(None, alias="SENDGRID_API_KEY")
    sendgrid_api_host: str = Field("https://api.sendgrid.com", alias="SENDGRID_API_HOST")
    sendgrid_webhook_public_key: str | None = Field(None, alias="SENDGRID_WEBHOOK_PUBLIC_KEY")
    twilio_account_sid: str | None = Field(None, alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr | None = Field(None, alias="TWILIO_AUTH_TOKEN")
    twilio_api_base_url: str = Field("https://api.twilio.com", alias="TWILIO_API_BASE_URL")

    email_from: str = Field("hello@example.com", alias="AUTOMATION_EMAIL_FROM")
    email_from_name: str = Field("Northwind Coffee", alias="AUTOMATION_EMAIL_FROM_NAME")
    shop_url: str = Field("https://shop.example.com", alias="AUTOMATION_SHOP_URL")
    postal_address: str | None = Field(None, alias="AUTOMATION_POSTAL_ADDRESS")
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$", alias="AUTOMATION_CURRENCY")
    sms_from: str | None = Field(None, alias="AUTOMATION_SMS_FROM")
    email_provider: ProviderName | None = Field(None, alias="AUTOMATION_EMAIL_PROVIDER")
    sms_provider: ProviderName | None = Field(None, alias="AUTOMATION_SMS_PROVIDER")
    outbox_dir: Path = Field(Path("outbox"), alias="AUTOMATION_OUTBOX_DIR")

    journeys_dir: Path = Field(Path("journeys"), alias="AUTOMATION_JOURNEYS_DIR")
    templates_dir: Path = Field(Path("templates"), alias="AUTOMATION_TEMPLATES_DIR")
    default_timezone: str = Field("UTC", alias="AUTOMATION_DEFAULT_TIMEZONE")
    # The template helpers' locale for customers without a valid `locale` trait.
    default_locale: str = Field("en_US", alias="AUTOMATION_DEFAULT_LOCALE")
    order_event: str = Field("order_placed", alias="AUTOMATION_ORDER_EVENT")
    public_url: str = Field("http://localhost:8000", alias="AUTOMATION_PUBLIC_URL")
    unsubscribe_secret: SecretStr = Field(
        SecretStr(DEFAULT_UNSUBSCRIBE_SECRET), alias="AUTOMATION_UNSUBSCRIBE_SECRET"
    )
    # How long a message's preference-centre link keeps working after it was sent.
    preference_link_days: int = Field(90, gt=0, alias="AUTOMATION_PREFERENCE_LINK_DAYS")
    # Secrets that signed links still in people's mailboxes (comma-separated), still accepted.
    unsubscribe_previous_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, alias="AUTOMATION_UNSUBSCRIBE_PREVIOUS_SECRETS"
    )

    provider_timeout_s: float = Field(10.0, gt=0, le=300, alias="AUTOMATION_PROVIDER_TIMEOUT_S")
    max_attempts: int = Field(8, ge=1, le=100, alias="AUTOMATION_MAX_ATTEMPTS")
    retry_min_backoff_ms: int = Field(1000, ge=1, le=DAY_MS, alias="AUTOMATION_RETRY_MIN_BACKOFF_MS")
    retry_max_backoff_ms: int = Field(300_000, ge=1, le=DAY_MS, alias="AUTOMATION_RETRY_MAX_BACKOFF_MS")
    # Retries of a whole message that failed in the worker (not a provider's answer) before giving up.
    worker_error_retries: int = Field(5, ge=0, le=100, alias="AUTOMATION_WORKER_ERROR_RETRIES")
    # Provider requests per second across all workers (a batch is one request); unset: no limit.
    email_rate_per_s: int | None = Field(None, gt=0, alias="AUTOMATION_EMAIL_RATE_PER_S")
    sms_rate_per_s: int | None = Field(10, gt=0, alias="AUTOMATION_SMS_RATE_PER_S")
    # Recipients per email request when they share a body (SendGrid takes up to 1,000); 1: no batches.
    email_batch_size: int = Field(1000, ge=1, le=1000, alias="AUTOMATION_EMAIL_BATCH_SIZE")
    email_cap_day: int = Field(1, ge=1, alias="AUTOMATION_EMAIL_CAP_DAY")
    email_cap_week: int = Field(3, ge=1, alias="AUTOMATION_EMAIL_CAP_WEEK")
    sms_cap_day: int = Field(1, ge=1, alias="AUTOMATION_SMS_CAP_DAY")

    tick_interval_s: int = Field(60, ge=1, le=DAY_S, alias="AUTOMATION_TICK_INTERVAL_S")
    # How often a worker looks at the journeys folder for a change (a tick always looks).
    catalog_check_s: float = Field(5.0, gt=0, le=3600, alias="AUTOMATION_CATALOG_CHECK_S")
    sweep_grace_s: int = Field(600, ge=1, le=DAY_S, alias="AUTOMATION_SWEEP_GRACE_S")
    claim_lease_s: int = Field(900, ge=10, le=DAY_S, alias="AUTOMATION_CLAIM_LEASE_S")
    heartbeat_timeout_ms: int = Field(15_000, ge=1000, le=DAY_MS, alias="AUTOMATION_HEARTBEAT_TIMEOUT_MS")
    maintenance_chance: int = Field(50_000, ge=0, le=1_000_000, alias="AUTOMATION_MAINTENANCE_CHANCE")

    # Events older than this many days are deleted by the scheduler's daily pass; unset: keep all.
    event_retention_days: int | None = Field(None, gt=0, alias="AUTOMATION_EVENT_RETENTION_DAYS")
    # Share of customers (percent) in the global control group: no marketing message, the KPIs' baseline.
    global_holdout_pct: float = Field(0.0, ge=0, le=100, alias="AUTOMATION_GLOBAL_HOLDOUT_PCT")
    # The time of day (UTC) at which the scheduler runs `insight refresh` once a day.
    insight_at: dt.time = Field(dt.time(3, 0), alias="AUTOMATION_INSIGHT_AT")
    # Tracking-API requests per second per write key; unset: no limit.
    api_rate_per_s: float | None = Field(None, gt=0, alias="AUTOMATION_API_RATE_PER_S")

    # The web process, webhooks and metrics.
    web_port: int = Field(8000, ge=1, le=65535, alias="PORT")
    webhook_tolerance_s: int = Field(300, gt=0, le=DAY_S, alias="AUTOMATION_WEBHOOK_TOLERANCE_S")
    metrics_port: int | None = Field(None, ge=1, le=65535, alias="AUTOMATION_METRICS_PORT")
    # The dashboard: how long a sign-in lasts, and the key that signs its cookie
    # (unset: derived from AUTOMATION_UNSUBSCRIBE_SECRET, so every web process agrees).
    session_hours: float = Field(12.0, gt=0, alias="AUTOMATION_SESSION_HOURS")
    session_secret: SecretStr | None = Field(None, alias="AUTOMATION_SESSION_SECRET")
    worker_metrics: bool = Field(False, alias="AUTOMATION_WORKER_METRICS")

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        from babel import Locale, UnknownLocaleError

        try:
            Locale.parse(value.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            raise ValueError(f"{value!r} is not a locale (like en_US or fr_FR)") from None
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, dotenv_settings, _EmptyValues(settings_cls), file_secret_settings

    @field_validator("unsubscribe_secret")
    @classmethod
    def _secret_not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("is empty; set a long random secret")
        return value

    @field_validator("unsubscribe_previous_secrets", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def unsubscribe_secrets(self) -> list[str]:
        """Every secret an unsubscribe token may be signed with, the current one first."""
        return [s.get_secret_value() for s in (self.unsubscribe_secret, *self.unsubscribe_previous_secrets)]

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("public_url", "shop_url", "sendgrid_api_host", "twilio_api_base_url")
    @classmethod
    def _web_url(cls, value: str) -> str:
        """Links and provider hosts: http(s) with a host, never `javascript:` or a bare word."""
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in REDIS_SCHEMES:
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        """Parsed here so that a malformed URL or port is one line naming the setting."""
        try:
            port = make_url(value).port
        except ArgumentError:
            raise ValueError("is not a database URL like postgresql://user@host:5432/name") from None
        except ValueError:
            raise ValueError("has a port that is not a number") from None
        if port is not None and not 0 < port < 65536:
            raise ValueError("has a port outside 1-65535")
        return value

    @model_validator(mode="after")
    def _backoff_order(self) -> Settings:
        if self.retry_min_backoff_ms > self.retry_max_backoff_ms:
            raise ValueError("AUTOMATION_RETRY_MIN_BACKOFF_MS is above AUTOMATION_RETRY_MAX_BACKOFF_MS")
        return self

    @property
    def embedded_broker(self) -> bool:
        """True when no Redis is configured: the tick delivers in-process."""
        return not self.redis_url

    def resolved_email_provider(self) -> ProviderName:
        if self.email_provider:
            return self.email_provider
        return "sendgrid" if self.sendgrid_api_key else "outbox"

    def resolved_sms_provider(self) -> ProviderName:
        if self.sms_provider:
            return self.sms_provider
        return "twilio" if self.twilio_account_sid else "outbox"

    @property
    def real_provider(self) -> bool:
        """True when a message can reach a real person (SendGrid or Twilio is the provider)."""
        return self.resolved_email_provider() == "sendgrid" or self.resolved_sms_provider() == "twilio"

    def shop(self) -> dict[str, str | None]:
        """The `shop` variable of every template: brand, shop URL, postal address, currency."""
        return {
            "name": self.email_from_name,
            "url": self.shop_url,
            "postal_address": self.postal_address,
            "currency": self.currency,
        }


def _is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in LOCAL_HOSTS or host.endswith(".localhost") or host.startswith("127.")


def production_problems(settings: Settings) -> list[str]:
    """Why these settings may not send to real people; empty when they may (or no real provider)."""
    if not settings.real_provider:
        return []
    problems = []
    secret = settings.unsubscribe_secret.get_secret_value()
    if secret == DEFAULT_UNSUBSCRIBE_SECRET:
        problems.append("AUTOMATION_UNSUBSCRIBE_SECRET is the default; set a random secret of 32+ characters")
    elif len(secret) < MIN_SECRET_LENGTH:
        problems.append(
            f"AUTOMATION_UNSUBSCRIBE_SECRET is {len(secret)} characters; use at least {MIN_SECRET_LENGTH}"
        )
    if _is_local(settings.public_url):
        problems.append(
            f"AUTOMATION_PUBLIC_URL is a local address ({settings.public_url}); set the public URL "
            "of the web process (unsubscribe links and Twilio callbacks use it)"
        )
    if not settings.postal_address:
        problems.append("AUTOMATION_POSTAL_ADDRESS is not set; commercial email must show a postal address")
    return problems


def require_safe_to_send(settings: Settings) -> None:
    """Refuse to start a process that sends (or serves links) with unsafe production settings."""
    problems = production_problems(settings)
    if problems:
        raise UnsafeSettings(problems)


def existing_folder(path: Path, setting: str, kind: str) -> Path:
    """The folder as an absolute path; a one-line error naming it and its setting when missing."""
    absolute = path.expanduser().absolute()
    if not absolute.is_dir():
        raise ConfigError(f"{kind} folder not found: {absolute} (set {setting})")
    return absolute


def load_settings(**overrides: object) -> Settings:
    """Read the environment; a malformed value is a one-line `ConfigError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(
            f"invalid setting {name}: {message}" if name else f"invalid settings: {message}"
        ) from None
