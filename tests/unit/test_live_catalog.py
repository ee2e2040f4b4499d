"""The live catalog: reload on change, refuse an invalid change, tell "removed" from "not here yet"."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from automation.definitions.catalog import Absent, LiveCatalog, content_version
from automation.web.dashboard.catalog_view import CatalogView

JOURNEY = "id: {jid}\nname: {jid}\ntrigger: {{event: {{name: ev}}}}\nsteps:\n  - send: {{id: mail, channel: email, template: t}}\n"


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    journeys, templates = tmp_path / "journeys", tmp_path / "templates"
    journeys.mkdir()
    (templates / "t").mkdir(parents=True)
    for part in ("subject.txt", "body.html", "body.txt"):
        (templates / "t" / part).write_text("Hi {{ customer.first_name }}", encoding="utf-8")
    (journeys / "a.yaml").write_text(JOURNEY.format(jid="a"), encoding="utf-8")
    return journeys, templates


def test_the_version_is_the_content_wherever_the_folders_are(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    journeys, templates = folders
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "j").mkdir()
    (copy / "j" / "a.yaml").write_bytes((journeys / "a.yaml").read_bytes())
    (copy / "t" / "t").mkdir(parents=True)
    for part in (templates / "t").iterdir():
        (copy / "t" / "t" / part.name).write_bytes(part.read_bytes())
    assert content_version(journeys, templates) == content_version(copy / "j", copy / "t")
    (copy / "j" / "a.yaml").write_text(JOURNEY.format(jid="a") + "enabled: false\n", encoding="utf-8")
    assert content_version(journeys, templates) != content_version(copy / "j", copy / "t")


def test_an_unknown_journey_reloads_the_folder_before_it_is_judged(folders: tuple[Path, Path]) -> None:
    journeys, templates = folders
    live = LiveCatalog(journeys, templates, check_every_s=3600)
    (journeys / "b.yaml").write_text(JOURNEY.format(jid="b"), encoding="utf-8")
    assert live.current.get("b") is None  # not looked at yet: the interval has not passed
    found = live.find("b", "mail")
    assert not isinstance(found, Absent) and found[0].id == "b"


def test_only_a_journey_absent_from_the_newest_catalog_is_gone(folders: tuple[Path, Path]) -> None:
    journeys, templates = folders
    newest: list[str | None] = [None]
    live = LiveCatalog(journeys, templates, newest=lambda: newest[0])
    assert live.find("nope", "mail") is Absent.GONE  # nothing recorded yet: our catalog is the newest
    newest[0] = live.current.version
    assert live.find("nope", "mail") is Absent.GONE
    assert live.find("a", "other-step") is Absent.GONE
    newest[0] = "0123456789abcdef"  # the scheduler runs files this process does not have yet
    assert live.find("nope", "mail") is Absent.BEHIND


def test_an_invalid_change_is_refused_with_its_lines_and_the_old_catalog_keeps_running(
    folders: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    journeys, templates = folders
    live = LiveCatalog(journeys, templates)
    before = live.current
    (journeys / "a.yaml").write_text(JOURNEY.format(jid="a") + "colour: red\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR, "automation.definitions.catalog"):
        assert live.refresh(force=True) is before
        assert live.refresh(force=True) is before  # refused once, not logged on every look
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith(f"{journeys / 'a.yaml'}:6:1: unknown key 'colour'")
    assert lines[1:] == [f"journeys change refused; still running catalog {before.version}"]
    (journeys / "a.yaml").write_text(JOURNEY.format(jid="a") + "enabled: false\n", encoding="utf-8")
    after = live.refresh(force=True)
    assert after.version != before.version and not after.journeys["a"].enabled


def test_the_web_view_looks_again_at_once_unless_asked_for_a_recent_look(folders: tuple[Path, Path]) -> None:
    """The dashboard sees a change at once; the tracking API (a max age) within its check interval."""
    journeys, templates = folders
    view = CatalogView(journeys, templates)
    first, _ = view.current(max_age_s=3600)
    assert first is not None and first.get("b") is None
    (journeys / "b.yaml").write_text(JOURNEY.format(jid="b"), encoding="utf-8")
    recent, _ = view.current(max_age_s=3600)
    assert recent is first
    now, _ = view.current()
    assert now is not None and now.get("b") is not None
