"""Done when: journeys added and edited while a real scheduler and a real worker run, restarts in both orders.

`automation scheduler` ticks every second on the wall clock and
`dramatiq automation.worker` delivers through the real SendGrid SDK to the
stand-in. Journeys are added, edited and broken (and mended) in the folder
while both run; the scheduler and the worker are restarted one after the
other, in both orders, with the folder changed in between. The worker looks
at its folder only once an hour on its own (`AUTOMATION_CATALOG_CHECK_S`), so
only meeting a journey it does not know makes it reload. At the end every
message went to its customer exactly once, and nothing was skipped.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from automation.config import load_settings
from automation.store.models import Delivery
from tests.deliverykit import start_worker, stop_worker, wait_for
from tests.harness import BIN, Flow, identify, track
from tests.standins import SendGridStandIn

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def journey(jid: str, event: str, template: str, extra: str = "") -> str:
    return (
        f"id: {jid}\nname: {jid}\ntrigger: {{event: {{name: {event}}}}}\n"
        f"quiet_hours: false\nfrequency_cap: false\n{extra}"
        f"steps:\n  - send: {{id: mail, channel: email, template: {template}}}\n"
    )


def template(folder: Path, name: str, subject: str) -> None:
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / "subject.txt").write_text(subject, encoding="utf-8")
    (folder / name / "body.html").write_text("<p>Hi {{ customer.first_name }}</p>", encoding="utf-8")
    (folder / name / "body.txt").write_text(
        "Hi {{ customer.first_name }}\n{{ unsubscribe_url }}", encoding="utf-8"
    )


class Processes:
    """The scheduler and the worker as an operator runs them, each with its own log."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None

    def start_scheduler(self) -> None:
        self.scheduler = subprocess.Popen(
            [str(BIN), "scheduler"],
            env={**os.environ, **self.env},
            stdout=(self.folder / "scheduler.log").open("a"),
            stderr=subprocess.STDOUT,
        )

    def start_worker(self) -> None:
        self.worker = start_worker(self.env, self.folder / "worker.log", threads=2)

    def stop_scheduler(self) -> None:
        assert self.scheduler is not None
        self.scheduler.terminate()
        assert self.scheduler.wait(timeout=60) == 0

    def stop_worker(self) -> None:
        assert self.worker is not None
        stop_worker(self.worker)

    def stop(self) -> None:
        for proc in (self.scheduler, self.worker):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(encoding="utf-8")


@pytest.fixture
def workspace(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[dict[str, str], Path, Path]]:
    journeys, templates = tmp_path / "journeys", tmp_path / "templates"
    journeys.mkdir()
    (templates / "_layouts").mkdir(parents=True)
    template(templates, "first", "First for {{ customer.first_name }}")
    (journeys / "first.yaml").write_text(journey("first", "ev_first", "first"), encoding="utf-8")
    values = {
        **env,
        "AUTOMATION_JOURNEYS_DIR": str(journeys),
        "AUTOMATION_TEMPLATES_DIR": str(templates),
        "AUTOMATION_TICK_INTERVAL_S": "1",
        "AUTOMATION_CATALOG_CHECK_S": "3600",
        "AUTOMATION_EMAIL_BATCH_SIZE": "1",
    }
    yield values, journeys, templates


def test_journeys_change_and_processes_restart_in_any_order_and_every_message_goes_once(
    workspace: tuple[dict[str, str], Path, Path],
    sendgrid: SendGridStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env, journeys, templates = workspace
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    flow = Flow(load_settings())
    procs = Processes(env, tmp_path)
    expected: collections.Counter[tuple[str, str]] = collections.Counter()
    people = [f"r{n}" for n in range(4)]
    flow.ingest(
        identify(c, "2026-01-01T00:00:00Z", email=f"{c}@example.com", first_name=c, email_opt_in=True)
        for c in people
    )
    rounds = 0

    def send(journey_id: str, event: str) -> None:
        """Each person does `event` now; the journey's message should reach each of them once."""
        nonlocal rounds
        rounds += 1
        now = dt.datetime.now(dt.UTC).isoformat()
        flow.ingest((track(c, event, now, f"{c}-{event}-{rounds}") for c in people), now=now)
        expected.update((f"{c}@example.com", journey_id) for c in people)

    def all_sent() -> bool:
        got = collections.Counter((m["to"], m["custom_args"]["journey_id"]) for m in sendgrid.messages())
        return got == expected

    try:
        procs.start_scheduler()
        procs.start_worker()
        send("first", "ev_first")
        assert wait_for(all_sent), procs.log("worker")

        # A journey added while both run: the scheduler's tick reloads; the worker meets it and reloads.
        template(templates, "second", "Second for {{ customer.first_name }}")
        (journeys / "second.yaml").write_text(journey("second", "ev_second", "second"), encoding="utf-8")
        send("second", "ev_second")
        assert wait_for(all_sent), procs.log("worker")

        # A broken edit is refused by both, with its file:line:col, and the old catalog keeps sending.
        (journeys / "second.yaml").write_text(journey("second", "ev_second", "second") + "colour: red\n")
        send("first", "ev_first")
        assert wait_for(all_sent), procs.log("worker")
        assert wait_for(
            lambda: f"{journeys / 'second.yaml'}:8:1: unknown key 'colour'" in procs.log("scheduler")
        )
        (journeys / "second.yaml").write_text(journey("second", "ev_second", "second"), encoding="utf-8")

        # Scheduler restarted first with a new journey; the old worker still runs.
        procs.stop_scheduler()
        template(templates, "third", "Third for {{ customer.first_name }}")
        (journeys / "third.yaml").write_text(journey("third", "ev_third", "third"), encoding="utf-8")
        procs.start_scheduler()
        send("third", "ev_third")
        assert wait_for(all_sent), procs.log("worker")
        procs.stop_worker()
        procs.start_worker()
        send("second", "ev_second")
        assert wait_for(all_sent), procs.log("worker")

        # Worker restarted first, after an edit of a journey's step (a new template and a step id).
        procs.stop_worker()
        template(templates, "third_v2", "Third again for {{ customer.first_name }}")
        (journeys / "third.yaml").write_text(
            journey("third", "ev_third", "third_v2").replace("id: mail", "id: mail-v2"), encoding="utf-8"
        )
        procs.start_worker()
        send("third", "ev_third")
        procs.stop_scheduler()
        procs.start_scheduler()
        send("first", "ev_first")
        assert wait_for(all_sent), procs.log("worker")
    finally:
        procs.stop()
        flow.close()

    with flow.runtime.sessions() as s:
        statuses = collections.Counter(s.scalars(select(Delivery.status)))
    assert statuses == {"sent": sum(expected.values())}
    subjects = [m["subject"] for m in sendgrid.messages() if m["custom_args"]["journey_id"] == "third"]
    assert sorted(subjects) == sorted(
        [f"Third for {c}" for c in people] + [f"Third again for {c}" for c in people]
    )
