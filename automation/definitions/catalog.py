"""The validated set of journeys and the templates they use, and its live, reloading form.

Loading checks everything that could go wrong at send time: YAML, schema,
durations, templates that are missing, broken, of the wrong channel or that
read a variable the journey cannot provide. Any problem refuses the whole
folder with every `file:line:col: message` listed.

A catalog's version is a hash of every file it was built from, so processes on
different machines holding the same files agree on it. `LiveCatalog` watches
the folders and swaps in a new catalog only once it validates.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from automation.core.journeys import Journey, SendStep
from automation.core.programme import DEFAULT_TIERS, Programme
from automation.core.topics import Topic, with_built_in
from automation.core.traits import Traits, filter_traits
from automation.definitions.loader import (
    LoadedJourney,
    load_journey_files,
    load_programme,
    load_topics,
    load_traits,
)
from automation.definitions.rendering import COMMON_VARIABLES, Renderer
from automation.enroll.kind import Scope, TriggerKind
from automation.enroll.kinds import kind_of
from automation.errors import JourneyError


@dataclass(frozen=True)
class Catalog:
    journeys: dict[str, Journey]
    sources: dict[str, Path]
    tier_order: tuple[str, ...]
    renderer: Renderer
    version: str
    traits: Traits = field(default_factory=Traits)
    topics: dict[str, Topic] = field(default_factory=lambda: with_built_in([]))
    programme: Programme | None = None

    def double_opt_in(self, topic_id: str) -> bool:
        """Whether the topic has a double opt-in sign-up journey (its yes then needs confirming)."""
        return any(j.double_opt_in and j.topic == topic_id for j in self.journeys.values())

    def get(self, journey_id: str) -> Journey | None:
        return self.journeys.get(journey_id)

    def active(self) -> list[Journey]:
        return [j for j in self.journeys.values() if j.enabled]

    def scope(self, default_tz: str) -> Scope:
        """What trigger kinds need beyond a journey and `now`."""
        tiers = self.programme.tiers if self.programme is not None else None
        return Scope(self.tier_order, default_tz, tiers)


def variables_for(kind: TriggerKind[Any]) -> frozenset[str]:
    """Every variable a template of a journey with this trigger kind may read."""
    return COMMON_VARIABLES | kind.variables


def _template_problems(loaded: LoadedJourney, renderer: Renderer) -> list[str]:
    journey = loaded.journey
    allowed = variables_for(kind_of(journey))
    out = []
    for placed in journey.placed.values():
        send = placed.step.send
        if send is None:
            continue
        paths: list[tuple[str, tuple[str | int, ...]]] = [
            (v.template, ("variants", i, "template")) for i, v in enumerate(send.variants or ())
        ]
        for template, path in paths or [(send.template or "", ("template",))]:
            where = loaded.where(*placed.loc, *path)
            for problem in renderer.problems(template, send.channel, allowed):
                in_template = problem.startswith(str(renderer.templates_dir))
                out.append(f"{problem} (template of {where})" if in_template else f"{where}: {problem}")
    return out


def _filter_problems(loaded: LoadedJourney, traits: Traits) -> list[str]:
    """Every trait the journey's audience and step conditions name that is neither well known nor declared."""
    journey = loaded.journey
    filters = [(journey.audience, ("audience",))] + [
        (getattr(placed.step.body, "if_", None), (*placed.loc, "if")) for placed in journey.placed.values()
    ]
    out = []
    for f, path in filters:
        for name, loc in filter_traits(f, path) if f is not None else ():
            problem = traits.problem(name)
            if problem:
                out.append(f"{loaded.where(*loc)}: {problem}")
    return out


def _topic_problems(loaded: LoadedJourney, topics: dict[str, Topic]) -> list[str]:
    """A journey's topic must be defined; a double opt-in one must start off."""
    journey = loaded.journey
    if journey.topic is None:
        return []
    topic = topics.get(journey.topic)
    if topic is None:
        known = ", ".join(sorted(topics))
        return [f"{loaded.where('topic')}: unknown topic {journey.topic!r} (topics.yaml has: {known})"]
    if journey.double_opt_in and topic.default == "opt_in":
        where = loaded.where("double_opt_in")
        return [f"{where}: topic {topic.id!r} must default to opt_out for a double opt-in"]
    return []


def check_catalog(
    journeys_dir: Path, templates_dir: Path, *, locale: str = "en_US", timezone: str = "UTC"
) -> tuple[Catalog | None, list[str]]:
    """Load and validate; returns the catalog (None when any problem) and every problem.

    `locale` and `timezone` are the template helpers' defaults for customers without their own.
    """
    loaded, problems = load_journey_files(journeys_dir)
    programme, programme_problems = load_programme(journeys_dir)
    problems.extend(programme_problems)
    tiers = programme.tier_order() if programme is not None else DEFAULT_TIERS
    topics, topic_problems = load_topics(journeys_dir)
    problems.extend(topic_problems)
    if not templates_dir.is_dir():
        problems.append(f"{templates_dir}: templates folder not found")
        return None, problems
    traits, trait_problems = load_traits(journeys_dir)
    problems.extend(trait_problems)
    renderer = Renderer(templates_dir, traits, locale=locale, timezone=timezone)
    for item in loaded:
        problems.extend(_template_problems(item, renderer))
        problems.extend(_filter_problems(item, traits))
        problems.extend(kind_of(item.journey).problems(item.journey, item.where, programme))
        problems.extend(_topic_problems(item, topics))
    if problems:
        return None, problems
    return (
        Catalog(
            journeys={i.journey.id: i.journey for i in loaded},
            sources={i.journey.id: i.path for i in loaded},
            tier_order=tiers,
            programme=programme,
            renderer=renderer,
            version=content_version(journeys_dir, templates_dir),
            traits=traits,
            topics=topics,
        ),
        [],
    )


def load_catalog(
    journeys_dir: Path, templates_dir: Path, *, locale: str = "en_US", timezone: str = "UTC"
) -> Catalog:
    """Load and validate, raising `JourneyError` listing every problem."""
    catalog, problems = check_catalog(journeys_dir, templates_dir, locale=locale, timezone=timezone)
    if catalog is None:
        raise JourneyError(problems)
    return catalog


def _files(*folders: Path) -> Iterator[tuple[str, Path]]:
    """Every file under the folders, in a stable order, with a name that does not depend on where they are."""
    for n, folder in enumerate(folders):
        if folder.is_dir():
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                yield f"{n}/{path.relative_to(folder).as_posix()}", path


def content_version(journeys_dir: Path, templates_dir: Path) -> str:
    """A hash of every journey and template file: equal files, equal version, on any machine."""
    digest = hashlib.sha256()
    for name, path in _files(journeys_dir, templates_dir):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def folder_stamp(journeys_dir: Path, templates_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of every file: a cheap way to notice a change."""
    stamp = []
    for name, path in _files(journeys_dir, templates_dir):
        try:
            info = path.stat()
        except OSError:
            continue
        stamp.append((name, info.st_size, info.st_mtime_ns))
    return tuple(stamp)


log = logging.getLogger("automation.definitions.catalog")


class Absent(Enum):
    """Why a delivery's journey or step was not found."""

    GONE = "absent from the newest catalog"
    BEHIND = "this process's catalog is older than the newest one recorded"


class LiveCatalog:
    """The newest valid catalog of the folders, reloaded when they change.

    A change is noticed at most every `check_every_s` seconds (or at once with
    `refresh(force=True)`); one that does not validate is refused with every
    `file:line:col: message` in the log, and the previous catalog keeps running.
    `newest` reads the version the scheduler recorded last, so that a process
    whose own folder lags behind can tell "removed" from "not here yet".
    """

    def __init__(
        self,
        journeys_dir: Path,
        templates_dir: Path,
        *,
        newest: Callable[[], str | None] = lambda: None,
        check_every_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
        locale: str = "en_US",
        timezone: str = "UTC",
    ) -> None:
        self.journeys_dir = journeys_dir
        self.templates_dir = templates_dir
        self._defaults = {"locale": locale, "timezone": timezone}  # the template helpers' defaults
        self._newest = newest
        self._every = check_every_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._stamp = folder_stamp(journeys_dir, templates_dir)
        self._current = load_catalog(journeys_dir, templates_dir, **self._defaults)
        self._refused: tuple[tuple[str, int, int], ...] | None = None
        self._checked = monotonic()

    @property
    def current(self) -> Catalog:
        return self._current

    def refresh(self, force: bool = False) -> Catalog:
        """The catalog to use now, after reloading the folders if they changed."""
        with self._lock:
            if not force and self._monotonic() - self._checked < self._every:
                return self._current
            self._checked = self._monotonic()
            stamp = folder_stamp(self.journeys_dir, self.templates_dir)
            if stamp in (self._stamp, self._refused):
                return self._current
            catalog, problems = check_catalog(self.journeys_dir, self.templates_dir, **self._defaults)
            if catalog is None:
                self._refused = stamp
                for problem in problems:
                    log.error("%s", problem)
                log.error("journeys change refused; still running catalog %s", self._current.version)
                return self._current
            self._stamp, self._refused = stamp, None
            if catalog.version != self._current.version:
                log.info(
                    "journeys reloaded: catalog %s -> %s (%d journeys)",
                    self._current.version,
                    catalog.version,
                    len(catalog.journeys),
                )
            self._current = catalog
            return catalog

    def find(self, journey_id: str, step_id: str) -> tuple[Journey, SendStep] | Absent:
        """A delivery's journey and send step; an unknown one reloads first and only then is judged."""
        found = _send_step(self.refresh(), journey_id, step_id)
        if found is not None:
            return found
        catalog = self.refresh(force=True)
        found = _send_step(catalog, journey_id, step_id)
        if found is not None:
            return found
        newest = self._newest()
        if newest is None or newest == catalog.version:
            return Absent.GONE
        return Absent.BEHIND


def _send_step(catalog: Catalog, journey_id: str, step_id: str) -> tuple[Journey, SendStep] | None:
    journey = catalog.get(journey_id)
    step = dict(journey.send_steps()).get(step_id) if journey is not None else None
    return (journey, step) if journey is not None and step is not None else None
