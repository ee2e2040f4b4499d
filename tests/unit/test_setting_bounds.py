"""Every interval, timeout, attempt count and lease has a bound; zones and URLs are checked."""

from __future__ import annotations

import pytest

from automation.config import load_settings
from automation.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("AUTOMATION_TICK_INTERVAL_S", "-1", "greater than or equal to 1"),
        ("AUTOMATION_TICK_INTERVAL_S", "0", "greater than or equal to 1"),
        ("AUTOMATION_TICK_INTERVAL_S", "100000", "less than or equal to 86400"),
        ("AUTOMATION_MAX_ATTEMPTS", "-3", "greater than or equal to 1"),
        ("AUTOMATION_PROVIDER_TIMEOUT_S", "-1", "greater than 0"),
        ("AUTOMATION_PROVIDER_TIMEOUT_S", "0", "greater than 0"),
        ("AUTOMATION_SWEEP_GRACE_S", "-600", "greater than or equal to 1"),
        ("AUTOMATION_CLAIM_LEASE_S", "-1", "greater than or equal to 10"),
        ("AUTOMATION_HEARTBEAT_TIMEOUT_MS", "0", "greater than or equal to 1000"),
        ("AUTOMATION_MAINTENANCE_CHANCE", "-1", "greater than or equal to 0"),
        ("AUTOMATION_RETRY_MIN_BACKOFF_MS", "-5", "greater than or equal to 1"),
        ("AUTOMATION_WEBHOOK_TOLERANCE_S", "-1", "greater than 0"),
        ("PORT", "70000", "less than or equal to 65535"),
        ("AUTOMATION_METRICS_PORT", "0", "greater than or equal to 1"),
        ("AUTOMATION_DEFAULT_TIMEZONE", "Mars/Olympus_Mons", "unknown IANA time zone 'Mars/Olympus_Mons'"),
        ("AUTOMATION_DEFAULT_TIMEZONE", "../../etc/passwd", "unknown IANA time zone"),
        ("AUTOMATION_PUBLIC_URL", "javascript:alert(1)", "must be an http:// or https:// URL with a host"),
        ("AUTOMATION_PUBLIC_URL", "example.com", "must be an http:// or https:// URL with a host"),
        ("SENDGRID_API_HOST", "ftp://api.sendgrid.com", "must be an http:// or https:// URL"),
        ("TWILIO_API_BASE_URL", "https://", "must be an http:// or https:// URL with a host"),
        ("REDIS_URL", "notredis://x", "must start with redis://, rediss:// or unix://"),
        ("DATABASE_URL", "postgresql://app:s3cret@db:abc/app", "has a port that is not a number"),
        ("DATABASE_URL", "postgresql://app@db:99999/app", "has a port outside 1-65535"),
        ("DATABASE_URL", "not a url", "is not a database URL"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"invalid setting {name}: ") and expected in message
    assert "\n" not in message and "s3cret" not in message


def test_backoffs_must_be_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATION_RETRY_MIN_BACKOFF_MS", "5000")
    monkeypatch.setenv("AUTOMATION_RETRY_MAX_BACKOFF_MS", "100")
    with pytest.raises(ConfigError, match=r"^invalid settings: AUTOMATION_RETRY_MIN_BACKOFF_MS is above"):
        load_settings()


def test_values_within_the_bounds_load(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AUTOMATION_TICK_INTERVAL_S": "1",
        "AUTOMATION_CLAIM_LEASE_S": "10",
        "AUTOMATION_DEFAULT_TIMEZONE": "Pacific/Kiritimati",
        "AUTOMATION_PUBLIC_URL": "https://mail.example.com/hooks",
        "REDIS_URL": "rediss://:pw@redis.example.com:6380/2",
        "DATABASE_URL": "postgresql+psycopg://app@db:5432/app",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.tick_interval_s == 1 and settings.default_timezone == "Pacific/Kiritimati"
