"""The validated set of journeys and the templates they use.

Loading checks everything that could go wrong at send time: YAML, schema,
durations, templates that are missing, broken, of the wrong channel or that
read a variable the journey cannot provide. Any problem refuses the whole
folder with every `file:line:col: message` listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from automation.core.journeys import Journey
from automation.definitions.loader import LoadedJourney, load_journey_files, load_tier_order
from automation.definitions.rendering import COMMON_VARIABLES, TRIGGER_VARIABLES, Renderer
from automation.errors import JourneyError


@dataclass(frozen=True)
class Catalog:
    journeys: dict[str, Journey]
    sources: dict[str, Path]
    tier_order: tuple[str, ...]
    renderer: Renderer

    def get(self, journey_id: str) -> Journey | None:
        return self.journeys.get(journey_id)

    def active(self) -> list[Journey]:
        return [j for j in self.journeys.values() if j.enabled]


def variables_for(journey: Journey) -> frozenset[str]:
    return COMMON_VARIABLES | TRIGGER_VARIABLES[journey.trigger.kind]


def _template_problems(loaded: LoadedJourney, renderer: Renderer) -> list[str]:
    journey = loaded.journey
    allowed = variables_for(journey)
    out = []
    for n, step in enumerate(journey.steps):
        if step.send is None:
            continue
        where = loaded.where("steps", n, "send", "template")
        for problem in renderer.problems(step.send.template, step.send.channel, allowed):
            in_template = problem.startswith(str(renderer.templates_dir))
            out.append(f"{problem} (template of {where})" if in_template else f"{where}: {problem}")
    return out


def check_catalog(
    journeys_dir: Path, templates_dir: Path, *, locale: str = "en_US", timezone: str = "UTC"
) -> tuple[Catalog | None, list[str]]:
    """Load and validate; returns the catalog (None when any problem) and every problem.

    `locale` and `timezone` are the template helpers' defaults for customers without their own.
    """
    loaded, problems = load_journey_files(journeys_dir)
    tiers, tier_problems = load_tier_order(journeys_dir)
    problems.extend(tier_problems)
    if not templates_dir.is_dir():
        problems.append(f"{templates_dir}: templates folder not found")
        return None, problems
    renderer = Renderer(templates_dir, locale=locale, timezone=timezone)
    for item in loaded:
        problems.extend(_template_problems(item, renderer))
        trigger = item.journey.trigger.tier_change
        if trigger and trigger.to:
            for tier in trigger.to:
                if tier not in tiers:
                    problems.append(
                        f"{item.where('trigger', 'tier_change', 'to')}: unknown tier {tier!r} "
                        f"(tiers: {', '.join(tiers)})"
                    )
    if problems:
        return None, problems
    return (
        Catalog(
            journeys={i.journey.id: i.journey for i in loaded},
            sources={i.journey.id: i.path for i in loaded},
            tier_order=tiers,
            renderer=renderer,
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
