"""Journey files read from YAML with the position of every key.

Loading keeps line and column for every key (ruamel.yaml round-trip), so that
any problem, from YAML syntax to an unknown key or a bad duration, is reported
as `file:line:column: message`. Files are read only when they are regular and
small, and YAML is refused before it is built when it uses anchors or aliases
(an alias bomb of a few hundred bytes expands to gigabytes) or nests deeper than
any definition needs.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, ScalarEvent
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.reader import ReaderError

from automation.core.filters import Filter
from automation.core.journeys import Journey
from automation.core.programme import Programme
from automation.core.topics import Topic, TopicsFile, with_built_in
from automation.core.traits import TraitFile, Traits
from automation.definitions import engaged
from automation.errors import DefinitionError
from automation.store.filter_sql import compile_problem

#: Size caps: the largest shipped journey is a few KiB.
MAX_JOURNEY_BYTES = 256 * 1024
MAX_FILTER_BYTES = 64 * 1024
#: Nesting deeper than this is refused before pydantic recurses into it.
MAX_DEPTH = 50
MATCH_NEEDS_EVENT = "`match` compares with the trigger event's properties: the journey needs an event trigger"


def read_definition(path: Path, limit: int) -> str:
    """A definition file's text; refuses what is not a regular file (a FIFO would block) or too big."""
    try:
        if not path.is_file():
            raise DefinitionError(f"{path}:1:1: not a regular file")
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise DefinitionError(f"{path}:1:1: cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise DefinitionError(f"{path}:1:1: larger than {limit // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DefinitionError(f"{path}:{line}:1: not UTF-8 text") from None


def _storable(text: str) -> bool:
    """False for text no database stores or compares: a NUL, a lone surrogate."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _screen(yaml: YAML, text: str, source: str) -> None:
    """Refuse, before anything is built, an anchor, an alias, over-deep nesting, a bad date or text.

    The constructor raises a bare ValueError for a date such as 2026-13-01; checking
    each timestamp here gives it a position.
    """
    depth = 0
    for event in yaml.parse(text):
        mark = event.start_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}"
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None):
            raise DefinitionError(f"{where}: YAML anchors and aliases are not allowed")
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise DefinitionError(f"{where}: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
        elif isinstance(event, ScalarEvent) and not _storable(event.value):
            raise DefinitionError(f"{where}: a NUL or a lone surrogate is not valid text")
        elif isinstance(event, ScalarEvent) and event.style is None:
            tag = yaml.resolver.resolve(ScalarNode, event.value, (True, False))
            if "timestamp" in str(tag):
                try:
                    yaml.constructor.construct_object(ScalarNode(tag, event.value, mark, event.end_mark))
                except (ValueError, OverflowError) as exc:
                    raise DefinitionError(f"{where}: not a valid date or time: {exc}") from None


def load_tree(text: str, source: str) -> Any:
    """The round-trip YAML tree of a definition, with positions; `DefinitionError` when refused."""
    yaml = YAML(typ="rt")
    try:
        _screen(yaml, text, source)
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise DefinitionError(f"{source}:{line}:{col}: invalid YAML: {problem}") from None
    except ReaderError as exc:
        before = text[: exc.position]
        line, col = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
        raise DefinitionError(f"{source}:{line}:{col}: invalid YAML: {str(exc).splitlines()[0]}") from None
    except YAMLError as exc:
        raise DefinitionError(f"{source}:1:1: invalid YAML: {str(exc).splitlines()[0]}") from None


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


def parse_journey(text: str, source: str) -> tuple[Journey | None, list[str], Any]:
    """Parse one journey; returns (journey or None, problems, the positioned YAML tree)."""
    try:
        root = load_tree(text, source)
    except DefinitionError as exc:
        return None, [str(exc)], None
    if not isinstance(root, CommentedMap):
        return None, [f"{source}:1:1: a journey file must be a mapping of keys"], None
    try:
        journey = Journey.model_validate(plain(root))
    except ValidationError as exc:
        return None, _messages(exc, root, source), root
    problems = [
        f"{source}:{':'.join(map(str, position(root, loc, at_key=True)))}: {problem}"
        for loc, f in _filters(journey, ())
        if (problem := compile_problem(f))
    ] + [
        f"{source}:{':'.join(map(str, position(root, path, at_key=True)))}: {problem}"
        for loc, f in _filters(journey, ())
        for path, problem in engaged.problems(journey, loc, f)
    ]
    if journey.trigger.event is None:
        problems += [
            f"{source}:{':'.join(map(str, position(root, path, at_key=True)))}: {MATCH_NEEDS_EVENT}"
            for path in journey.matching()
        ]
    return (None if problems else journey), problems, root


def _filters(node: Any, loc: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Filter]]:
    """Every filter in a definition with its `loc` path, whatever step or setting holds it."""
    if isinstance(node, Filter):
        yield loc, node
    elif isinstance(node, BaseModel):
        for name, field in type(node).model_fields.items():
            yield from _filters(getattr(node, name), (*loc, field.alias or name))
    elif isinstance(node, list | tuple):
        for n, item in enumerate(node):
            yield from _filters(item, (*loc, n))


def parse_filter(text: str, source: str) -> Filter:
    """A filter from YAML text (`--where`), checked and compiled; `DefinitionError` with its position."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILTER_BYTES:
        raise DefinitionError(f"{source}:1:1: larger than {MAX_FILTER_BYTES // 1024} KiB")
    root = load_tree(text, source)
    if not isinstance(root, CommentedMap):
        raise DefinitionError(f"{source}:1:1: a filter is a mapping, like {{trait: tier, eq: gold}}")
    try:
        parsed = Filter.model_validate(plain(root))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        line, col = position(root, loc, at_key=False)
        where = ".".join(str(p) for p in loc)
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise DefinitionError(f"{source}:{line}:{col}: {where + ': ' if where else ''}{msg}") from None
    problem = compile_problem(parsed)
    if problem:
        raise DefinitionError(f"{source}:1:1: {problem}")
    for path, problem in engaged.anywhere(parsed, ()):
        line, col = position(root, path, at_key=True)
        raise DefinitionError(f"{source}:{line}:{col}: {problem}")
    return parsed


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
        if path.name == RETIRED_TIERS_FILE:
            problems.append(f"{path}:1:1: {RETIRED_TIERS}")
            continue
        try:
            text = read_definition(path, MAX_JOURNEY_BYTES)
        except DefinitionError as exc:
            problems.append(str(exc))
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


LOYALTY_FILE = "loyalty.yaml"
TRAITS_FILE = "traits.yaml"
TOPICS_FILE = "topics.yaml"
#: Files beside the journeys that are not journeys.
SIDE_FILES = (LOYALTY_FILE, TRAITS_FILE, TOPICS_FILE)
#: The file loyalty.yaml replaced: named on its own, not read as a journey with five errors.
RETIRED_TIERS_FILE = "tiers.yaml"
RETIRED_TIERS = "tiers.yaml is replaced by loyalty.yaml: list the tiers, lowest first, under tiers.levels"


def _side_tree(path: Path) -> tuple[Any, list[str]]:
    """The YAML tree of a side file beside the journeys, read defensively; or why it cannot be read."""
    try:
        return load_tree(read_definition(path, MAX_JOURNEY_BYTES), str(path)), []
    except DefinitionError as exc:
        return None, [str(exc)]


SideModel = TypeVar("SideModel", bound=BaseModel)


def _side_file(path: Path, model: type[SideModel], shape: str) -> tuple[SideModel | None, list[str]]:
    """A side file beside the journeys, read defensively and validated; (None, []) when it is absent."""
    if not path.exists():
        return None, []
    root, problems = _side_tree(path)
    if problems:
        return None, problems
    if not isinstance(root, CommentedMap):
        return None, [f"{path}:1:1: {shape}"]
    try:
        return model.model_validate(plain(root)), []
    except ValidationError as exc:
        return None, _messages(exc, root, str(path), model)


def load_traits(directory: Path) -> tuple[Traits, list[str]]:
    """The custom traits declared in `traits.yaml` beside the journeys (none when it is absent)."""
    parsed, problems = _side_file(directory / TRAITS_FILE, TraitFile, "traits.yaml must be a mapping of keys")
    if problems:
        return Traits(check=False), problems
    return (Traits(parsed.traits) if parsed else Traits()), []


def load_programme(directory: Path) -> tuple[Programme | None, list[str]]:
    """The loyalty programme of `loyalty.yaml` beside the journeys (None when it is absent)."""
    return load_programme_file(directory / LOYALTY_FILE)


def load_programme_file(path: Path) -> tuple[Programme | None, list[str]]:
    """A loyalty programme file anywhere (`loyalty simulate --file`); (None, []) when it is absent."""
    return _side_file(path, Programme, "loyalty.yaml must be a mapping of keys")


def load_topics(directory: Path) -> tuple[dict[str, Topic], list[str]]:
    """The topics of `topics.yaml` beside the journeys, with the built-in `marketing`; and any problems."""
    parsed, problems = _side_file(
        directory / TOPICS_FILE, TopicsFile, "a topics file is a mapping with `topics:`"
    )
    return with_built_in(parsed.topics if parsed else []), problems
