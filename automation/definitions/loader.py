"""Journey files read from YAML with the position of every key.

Loading keeps line and column for every key (ruamel.yaml round-trip), so that
any problem, from YAML syntax to an unknown key or a bad duration, is reported
as `file:line:column: message`.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from automation.core.journeys import Journey
from automation.core.traits import TraitFile, Traits


def plain(node: Any) -> Any:
    """A round-trip YAML tree as plain dicts and lists, for pydantic."""
    if isinstance(node, CommentedMap):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [plain(v) for v in node]
    return node


def position(root: Any, loc: tuple[Any, ...], at_key: bool) -> tuple[int, int]:
    """Line and column (1-based) of the node at a pydantic `loc` path."""
    node, line, col = root, 0, 0
    for n, part in enumerate(loc):
        last = n == len(loc) - 1
        if isinstance(node, CommentedMap) and part in node:
            child = node[part]
            scalar = not isinstance(child, CommentedMap | CommentedSeq)
            line, col = node.lc.value(part) if (last and scalar and not at_key) else node.lc.key(part)
            node = child
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line, col = node.lc.item(part)
            node = node[part]
        else:
            break
    return line + 1, col + 1


def _model_at(model: Any, path: tuple[Any, ...]) -> Any:
    """The pydantic model class a loc path leads to, for did-you-mean hints."""
    for part in path:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", {})
        field = fields.get(part) or next((f for f in fields.values() if f.alias == part), None)
        if field is None:
            return None
        model = _unwrap(field.annotation)
    return model


def _unwrap(annotation: Any) -> Any:
    for arg in (annotation, *get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        if get_origin(arg) is list:
            return _unwrap(get_args(arg)[0])
    return None


def _known_keys(model: Any) -> list[str]:
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _messages(exc: ValidationError, root: Any, source: str, model: type[BaseModel] = Journey) -> list[str]:
    out: list[str] = []
    seen: set[tuple[int, int, str]] = set()
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        loc = tuple(
            p
            for p in loc
            if p
            not in (
                "literal['once_per_occurrence','once']",
                "Cooldown",
                "QuietHours",
                "literal[False]",
            )
        )
        if err["type"] == "extra_forbidden":
            key = str(loc[-1])
            known = _known_keys(_model_at(model, loc[:-1]))
            hint = difflib.get_close_matches(key, known, n=1)
            msg = f"unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            if known:
                msg += f"; expected one of: {', '.join(known)}"
            line, col = position(root, loc, at_key=True)
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            where = ".".join(str(p) for p in loc)
            if err["type"] == "missing":
                msg = f"missing required key {str(loc[-1])!r}"
                line, col = position(root, loc[:-1], at_key=False)
            else:
                msg = f"{where}: {msg}" if where else msg
                line, col = position(root, loc, at_key=False)
        if (line, col, msg) not in seen:
            seen.add((line, col, msg))
            out.append(f"{source}:{line}:{col}: {msg}")
    return out


M = TypeVar("M", bound=BaseModel)


def parse_model(model: type[M], text: str, source: str, what: str) -> tuple[M | None, list[str], Any]:
    """Parse one YAML file into `model`; returns (it or None, problems, the positioned YAML tree)."""
    yaml = YAML(typ="rt")
    try:
        root = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        return None, [f"{source}:{line}:{col}: invalid YAML: {problem}"], None
    except YAMLError as exc:
        return None, [f"{source}:1:1: invalid YAML: {exc}"], None
    if not isinstance(root, CommentedMap):
        return None, [f"{source}:1:1: {what} must be a mapping of keys"], None
    try:
        parsed = model.model_validate(plain(root))
    except ValidationError as exc:
        return None, _messages(exc, root, source, model), root
    return parsed, [], root


def parse_journey(text: str, source: str) -> tuple[Journey | None, list[str], Any]:
    """Parse one journey; returns (journey or None, problems, the positioned YAML tree)."""
    return parse_model(Journey, text, source, "a journey file")


class LoadedJourney(BaseModel):
    """A parsed journey with the file it came from and its YAML tree for positions."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    journey: Journey
    path: Path
    tree: Any

    def where(self, *loc: Any) -> str:
        line, col = position(self.tree, loc, at_key=False)
        return f"{self.path}:{line}:{col}"


def load_journey_files(directory: Path) -> tuple[list[LoadedJourney], list[str]]:
    """Parse every `*.yaml`/`*.yml` in a folder (not templates); collect all problems."""
    if not directory.is_dir():
        return [], [f"{directory}: journeys folder not found"]
    loaded: list[LoadedJourney] = []
    problems: list[str] = []
    ids: dict[str, Path] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        if path.name in SIDE_FILES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}:1:1: cannot read: {exc}")
            continue
        journey, errs, tree = parse_journey(text, str(path))
        problems.extend(errs)
        if journey is None:
            continue
        if journey.id in ids:
            problems.append(
                f"{LoadedJourney(journey=journey, path=path, tree=tree).where('id')}: "
                f"duplicate journey id {journey.id!r} (also in {ids[journey.id]})"
            )
            continue
        ids[journey.id] = path
        loaded.append(LoadedJourney(journey=journey, path=path, tree=tree))
    return loaded, problems


TIER_FILE = "tiers.yaml"
TRAITS_FILE = "traits.yaml"
#: Files beside the journeys that are not journeys.
SIDE_FILES = (TIER_FILE, TRAITS_FILE)
DEFAULT_TIERS = ("bronze", "silver", "gold", "platinum")


def load_tier_order(directory: Path) -> tuple[tuple[str, ...], list[str]]:
    """The tier order from `tiers.yaml` beside the journeys (`order: [..]`), else the default."""
    path = directory / TIER_FILE
    if not path.exists():
        return DEFAULT_TIERS, []
    try:
        root = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as exc:
        return DEFAULT_TIERS, [f"{path}:1:1: cannot read tier order: {exc}"]
    order = root.get("order") if isinstance(root, CommentedMap) else None
    if not isinstance(order, list) or not order or not all(isinstance(t, str) for t in order):
        return DEFAULT_TIERS, [f"{path}:1:1: expected `order:` with a list of tier names"]
    return tuple(order), []


def load_traits(directory: Path) -> tuple[Traits, list[str]]:
    """The custom traits declared in `traits.yaml` beside the journeys (none when it is absent)."""
    path = directory / TRAITS_FILE
    if not path.exists():
        return Traits(), []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Traits(check=False), [f"{path}:1:1: cannot read: {exc}"]
    parsed, problems, _ = parse_model(TraitFile, text, str(path), "traits.yaml")
    return (Traits(parsed.traits) if parsed else Traits(check=False)), problems
