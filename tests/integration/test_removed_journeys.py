"""A journey whose file is removed ends its enrollments next tick; one disabled shows them as paused."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from automation.config import load_settings
from automation.core.statuses import DeliveryStatus, EnrollmentState
from automation.store.models import Enrollment
from tests.deliverykit import event, kit_env, person
from tests.harness import Flow, cli

__all__ = ["kit_env"]

T0 = "2026-11-22T12:00:00Z"
TWO_SENDS = """id: {jid}
name: {jid}
enabled: {enabled}
trigger: {{event: {{name: {jid}}}}}
quiet_hours: false
steps:
  - send: {{id: first, channel: email, template: promo_mail}}
  - wait: {{days: 1}}
  - send: {{id: second, channel: email, template: promo_mail}}
"""


def write(folder: Path, jid: str, enabled: bool = True) -> Path:
    path = folder / f"{jid}.yaml"
    path.write_text(TWO_SENDS.format(jid=jid, enabled=str(enabled).lower()), encoding="utf-8")
    return path


def test_a_removed_journey_ends_its_enrollments_and_skips_their_pending_messages(
    kit_env: dict[str, str],
) -> None:
    folder = Path(kit_env["AUTOMATION_JOURNEYS_DIR"])
    doomed = write(folder, "doomed")
    before = Flow(load_settings())
    before.ingest([person("ada"), event("ada", "doomed", T0)])
    before.tick(T0)  # the first message is queued, not yet sent
    before.close()
    doomed.unlink()
    after = Flow(load_settings())
    report = after.run("2026-11-22T12:05:00Z")
    assert report.exited == 1
    (delivery,) = after.deliveries()
    assert (delivery.status, delivery.reason) == (DeliveryStatus.SKIPPED, "journey removed")
    with after.runtime.sessions() as s:
        enrollment = s.scalars(select(Enrollment)).one()
    assert (enrollment.state, enrollment.exit_reason) == (EnrollmentState.EXITED, "journey removed")
    after.run("2026-11-24T12:00:00Z")
    assert len(after.deliveries()) == 1  # nothing more of it, ever
    after.close()


def test_a_disabled_journey_keeps_its_enrollments_where_they_are_shown_as_paused(
    kit_env: dict[str, str],
) -> None:
    folder = Path(kit_env["AUTOMATION_JOURNEYS_DIR"])
    write(folder, "resting")
    flow = Flow(load_settings())
    flow.ingest([person("ada"), event("ada", "resting", T0)])
    flow.run(T0)
    flow.close()
    write(folder, "resting", enabled=False)
    flow = Flow(load_settings())
    flow.run("2026-11-24T12:00:00Z")
    assert [d.step_id for d in flow.deliveries()] == ["first"]  # no step while disabled
    flow.close()
    status = cli("status", "--journey", "resting", env=kit_env)
    assert status.returncode == 0, status.stderr
    assert "1 paused" in status.stdout
