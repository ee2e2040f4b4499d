"""What the declaration files (journeys, traits, topics) share: an editor schema, unique names. Pure."""

from __future__ import annotations

import json
from collections.abc import Iterable

from pydantic import BaseModel


def editor_schema(model: type[BaseModel], title: str, *, by_alias: bool = False) -> str:
    """The JSON Schema text editors use to complete and check a file of `model`."""
    schema = model.model_json_schema(by_alias=by_alias)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = title
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def first_repeat(names: Iterable[str]) -> str | None:
    """The first name given a second time, so a file's error names the clash."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def refuse_repeats(names: Iterable[str], message: str) -> None:
    """Raise the validation error `message` (with `{!r}` for the name) for the first name given twice."""
    repeated = first_repeat(names)
    if repeated is not None:
        raise ValueError(message.format(repeated))
