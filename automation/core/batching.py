"""Grouping rendered emails into provider batches: one shared body, a few strings per recipient.

SendGrid's v3 mail send takes up to 1,000 personalizations per request, each
with its own recipient, subject, headers, custom_args and `substitutions`, but
one shared content. Each message is rendered in full for its own recipient
first; the strings that came from the recipient's own context (name, links,
order facts) are then cut out of the rendered body into substitution keys.
Messages whose cut-out bodies are identical share a batch. Every recipient's
message is rebuilt from the shared body and its substitutions and compared
with its own rendering: a message that would not come out byte for byte the
same goes alone, so batching never changes what anybody receives. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from markupsafe import escape

from automation.core.messages import EmailBatch, EmailMessage, Recipient, substitute

K = TypeVar("K")

#: The most personalizations SendGrid takes in one request.
MAX_BATCH = 1000
#: SendGrid's limit on the total size of one personalization's substitutions.
MAX_SUBSTITUTION_BYTES = 10_000
#: Shorter strings are left in the body: cutting out "a" or "3" would split everybody apart.
MIN_VALUE_LEN = 2
# A key is "[[sub:h:customer.first_name]]"; a body that already holds "[[sub:" is not cut.
_KEY_PREFIX = "[[sub:"
_KEY_SUFFIX = "]]"


@dataclass(frozen=True)
class Batched(Generic[K]):
    """A batch and the caller's keys of its recipients, in the same order."""

    batch: EmailBatch
    keys: tuple[K, ...]


def personal_values(
    context: Mapping[str, Any], shared: Iterable[str] = ("journey", "brand")
) -> dict[str, str]:
    """The recipient's own strings in a template context, by dotted path (shared parts left out)."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value)
            if len(text) >= MIN_VALUE_LEN:
                out[prefix] = text

    walk("", {k: v for k, v in context.items() if k not in set(shared)})
    return out


def _replace_whole(text: str, form: str, key: str) -> str:
    """`text` with `form` replaced by `key` where it stands whole: "Ann" in "Hi Ann," but not in "Annual"."""
    check_before, check_after = form[0].isalnum(), form[-1].isalnum()
    out: list[str] = []
    start = 0
    at = text.find(form)
    while at != -1:
        end = at + len(form)
        inside = (check_before and at > 0 and text[at - 1].isalnum()) or (
            check_after and end < len(text) and text[end].isalnum()
        )
        if inside:
            at = text.find(form, at + 1)
            continue
        out += (text[start:at], key)
        start = end
        at = text.find(form, start)
    out.append(text[start:])
    return "".join(out)


def _cut(message: EmailMessage, values: Mapping[str, str]) -> tuple[str, str, dict[str, str]] | None:
    """The message's body with its personal strings cut into keys, or None if it cannot be."""
    if _KEY_PREFIX in message.html or _KEY_PREFIX in message.text:
        return None
    parts = {"h": message.html, "t": message.text}
    subs: dict[str, str] = {}
    for path, value in sorted(values.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if _KEY_PREFIX in value:
            return None
        for part, form in (("h", str(escape(value))), ("t", value)):
            if form not in parts[part]:
                continue
            key = f"{_KEY_PREFIX}{part}:{path}{_KEY_SUFFIX}"
            cut = _replace_whole(parts[part], form, key)
            if cut != parts[part]:
                subs[key] = form
                parts[part] = cut
    if sum(len(k.encode()) + len(v.encode()) for k, v in subs.items()) > MAX_SUBSTITUTION_BYTES:
        return None
    body_html, body_text = parts["h"], parts["t"]
    if substitute(body_html, subs) != message.html or substitute(body_text, subs) != message.text:
        return None
    return body_html, body_text, subs


def _recipient(message: EmailMessage, subs: dict[str, str]) -> Recipient:
    return Recipient(
        to=message.to,
        to_name=message.to_name,
        subject=message.subject,
        headers=dict(message.headers),
        custom_args=dict(message.custom_args),
        substitutions=subs,
    )


def group(
    messages: Sequence[tuple[K, EmailMessage, Mapping[str, str]]], max_size: int = MAX_BATCH
) -> list[Batched[K]]:
    """Batches of messages that can share one body; a message that cannot goes alone.

    Parameters:
      messages: (key, the recipient's fully rendered message, its personal strings).
      max_size: the most recipients in one batch.

    Returns:
      batches covering every message once, in the order their first message came.
    """
    if len(messages) == 1:
        key, message, _ = messages[0]
        return [Batched(EmailBatch.single(message), (key,))]
    groups: dict[tuple[Any, ...], list[tuple[K, Recipient]]] = {}
    shared: dict[tuple[Any, ...], EmailBatch] = {}
    for n, (key, message, values) in enumerate(messages):
        cut = _cut(message, values)
        if cut is None:
            gkey: tuple[Any, ...] = ("alone", n)
            body_html, body_text, subs = message.html, message.text, dict[str, str]()
        else:
            body_html, body_text, subs = cut
            gkey = (message.from_email, message.from_name, message.categories, body_html, body_text)
        groups.setdefault(gkey, []).append((key, _recipient(message, subs)))
        shared.setdefault(gkey, EmailBatch.single(replace(message, html=body_html, text=body_text)))
    out: list[Batched[K]] = []
    for gkey, members in groups.items():
        for start in range(0, len(members), max_size):
            chunk = members[start : start + max_size]
            recipients = tuple(r for _, r in chunk)
            out.append(Batched(replace(shared[gkey], recipients=recipients), tuple(k for k, _ in chunk)))
    return out
