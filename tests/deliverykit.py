"""Journeys and templates for the delivery tests, and fixtures that wire them in.

Each journey enters on its own event and sends at once, so a test picks the
rule it exercises by the event it tracks, and sets the due instant with the
tick's `now`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from automation.config import Settings, load_settings
from tests.harness import Flow, identify, track

ROOT = Path(__file__).resolve().parent.parent

EMAIL = "{channel: email, template: promo_mail}"
JOURNEYS = {
    "promo_a": ("promo", EMAIL, ""),
    "promo_b": ("promo", EMAIL, ""),
    "promo_c": ("promo", EMAIL, ""),
    "news": ("news", EMAIL, "send_within: 7d\n"),  # a weekly-cap deferral is not stale
    "news_skip": ("news_skip", EMAIL, "cap_action: skip\n"),
    "late_ok": ("late", EMAIL, "quiet_hours: false\n"),
    "late_custom": ("late_custom", EMAIL, "quiet_hours: {start: '23:00', end: '06:30'}\n"),
    "receipt": ("receipt", EMAIL, "transactional: true\n"),
    "text": ("text", "{channel: sms, template: text_sms}", ""),
    "text_long": ("text_long", "{channel: sms, template: long_sms}", "max_sms_segments: 1\n"),
    "text_unicode": ("text_unicode", "{channel: sms, template: long_sms}", ""),
    "text_receipt": ("text_receipt", "{channel: sms, template: text_sms}", "transactional: true\n"),
    "gold_only": ("gold", "{channel: email, template: promo_mail, if: {trait: tier, eq: gold}}", ""),
    # Poisoned by data: `points` of "lots" (TypeError) or 10**9 (the sandbox's OverflowError).
    "points": ("points", "{channel: email, template: points_mail}", "quiet_hours: false\n"),
    "points_text": ("points_text", "{channel: sms, template: points_sms}", "quiet_hours: false\n"),
    "offer": ("offer", "{channel: email, template: offer_mail, coupon: welcome}", "quiet_hours: false\n"),
}
TEMPLATES = {
    "promo_mail/subject.txt": "News for {{ customer.first_name or 'you' }}",
    "promo_mail/body.html": (
        '{% extends "_layouts/email.html" %}{% block content %}'
        "<p>Hi {{ customer.first_name or 'there' }}, {{ journey.name }}.</p>{% endblock %}"
    ),
    "promo_mail/body.txt": "Hi {{ customer.first_name or 'there' }}, {{ journey.name }}.\n\n{{ unsubscribe_url }}\n",
    "text_sms/sms.txt": "Hi {{ customer.first_name or 'there' }}, your beans are ready. Reply STOP to opt out.",
    "points_mail/subject.txt": "Your points, {{ customer.first_name }}",
    "points_mail/body.html": (
        '{% extends "_layouts/email.html" %}{% block content %}'
        "<p>Hi {{ customer.first_name }}, you will have {{ customer.points + 1 }} points."
        "{% for n in range(customer.points) %}{% endfor %}</p>{% endblock %}"
    ),
    "points_mail/body.txt": "Hi {{ customer.first_name }},\nyou will have {{ customer.points + 1 }} points."
    "{% for n in range(customer.points) %}{% endfor %}\n\n{{ unsubscribe_url }}\n",
    "points_sms/sms.txt": "{{ customer.points + 1 }} points{% for n in range(customer.points) %}{% endfor %}. STOP to end",
    "offer_mail/subject.txt": "A gift for {{ customer.first_name }}",
    "offer_mail/body.html": (
        '{% extends "_layouts/email.html" %}{% block content %}'
        "<p>Your code: {{ coupon.code }} (until {{ coupon.expires_at or 'always' }})</p>{% endblock %}"
    ),
    "offer_mail/body.txt": "Your code: {{ coupon.code }} (until {{ coupon.expires_at or 'always' }})\n\n"
    "{{ unsubscribe_url }}\n",
    "long_sms/sms.txt": "Bonjour {{ customer.first_name }} ☕ "
    + "votre café est prêt, " * 6
    + "STOP pour arrêter",
}


# The custom trait the poisoned templates read, declared as a template needs it to be.
KIT_TRAITS = "traits:\n  - {name: points, type: number}\n"


def write_workspace(folder: Path) -> tuple[Path, Path]:
    journeys, templates = folder / "journeys", folder / "templates"
    journeys.mkdir(parents=True)
    shutil.copytree(ROOT / "templates" / "_layouts", templates / "_layouts")
    (journeys / "traits.yaml").write_text(KIT_TRAITS, encoding="utf-8")
    for jid, (event, send, extra) in JOURNEYS.items():
        (journeys / f"{jid}.yaml").write_text(
            f"id: {jid}\nname: {jid.replace('_', ' ')}\ntrigger: {{event: {{name: {event}}}}}\n{extra}"
            f"steps:\n  - send: {send}\n",
            encoding="utf-8",
        )
    # The points templates read a custom trait, which must be declared.
    (journeys / "traits.yaml").write_text(
        "traits:\n  - name: points\n    type: integer\n    description: Loyalty points.\n",
        encoding="utf-8",
    )
    for name, text in TEMPLATES.items():
        path = templates / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return journeys, templates


@pytest.fixture
def kit_env(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The test environment pointed at the delivery journeys."""
    journeys, templates = write_workspace(tmp_path / "kit")
    values = {**env, "AUTOMATION_JOURNEYS_DIR": str(journeys), "AUTOMATION_TEMPLATES_DIR": str(templates)}
    for key in ("AUTOMATION_JOURNEYS_DIR", "AUTOMATION_TEMPLATES_DIR"):
        monkeypatch.setenv(key, values[key])
    return values


@pytest.fixture
def kit_settings(kit_env: dict[str, str]) -> Settings:
    return load_settings()


@pytest.fixture
def flow(kit_settings: Settings) -> Iterator[Flow]:
    f = Flow(kit_settings)
    yield f
    f.close()


@pytest.fixture
def make_flow(kit_settings: Settings) -> Iterator[Callable[..., Flow]]:
    """Flows with settings overridden (e.g. `make_flow(email_batch_size=1)`), closed after the test."""
    made: list[Flow] = []

    def build(**overrides: object) -> Flow:
        made.append(Flow(kit_settings.model_copy(update=overrides)))
        return made[-1]

    yield build
    for f in made:
        f.close()


def person(cid: str, tz: str = "UTC", **traits: Any) -> dict[str, Any]:
    """An opted-in customer with an email address and a phone number, unless told otherwise."""
    base: dict[str, Any] = {
        "email": f"{cid}@example.com",
        "phone": f"+1555{zlib.crc32(cid.encode()) % 10**7:07d}",
        "first_name": cid.capitalize(),
        "timezone": tz,
        "email_opt_in": True,
        "sms_opt_in": True,
    }
    return identify(cid, "2026-01-01T00:00:00Z", **{**base, **traits})


def event(cid: str, name: str, ts: str, n: int = 1) -> dict[str, Any]:
    return track(cid, name, ts, f"{cid}-{name}-{ts}-{n}")


DRAMATIQ = Path(sys.executable).parent / "dramatiq"


def start_worker(env: dict[str, str], log: Path, threads: int = 4) -> subprocess.Popen[bytes]:
    """`dramatiq automation.worker` in its own process group, as an operator runs it.

    Its output goes to `log` (a pipe nobody reads would fill and block it).
    """
    return subprocess.Popen(
        [str(DRAMATIQ), "automation.worker", "--processes", "1", "--threads", str(threads)],
        env={**os.environ, **env},
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill_worker(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole worker (parent and forked children): nothing gets to clean up."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def stop_worker(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM to the main process (a graceful stop; it tells its children) and the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Poll a real process's effect until it holds or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False
