"""Grouping rendered emails into batches: what each recipient gets never changes."""

from __future__ import annotations

from typing import Any

import pytest
from markupsafe import escape

from automation.core.batching import MAX_SUBSTITUTION_BYTES, group, personal_values
from automation.core.messages import EmailBatch, EmailMessage


def render(name: str | None, delivery_id: int, total: str = "42.50") -> tuple[EmailMessage, dict[str, str]]:
    """What the worker renders for one person, and the personal strings of its context."""
    ctx: dict[str, Any] = {
        "customer": {"first_name": name, "id": f"c{delivery_id}"},
        "event": {"total": total},
        "unsubscribe_url": f"https://x.test/unsubscribe/tok{delivery_id}",
        "delivery_id": delivery_id,
        "brand": "Northwind",
        "journey": {"id": "thanks", "name": "Thanks"},
    }
    shown = name or "there"
    message = EmailMessage(
        to=f"p{delivery_id}@example.com",
        to_name=name,
        from_email="hello@northwind.test",
        from_name="Northwind",
        subject=f"Thanks, {shown}",
        html=f"<p>Hi {escape(shown)}, your {total} EUR order.</p><a href='{ctx['unsubscribe_url']}'>x</a>",
        text=f"Hi {shown}, your {total} EUR order.\nUnsubscribe: {ctx['unsubscribe_url']}",
        headers={"List-Unsubscribe": f"<{ctx['unsubscribe_url']}>"},
        custom_args={"delivery_id": str(delivery_id)},
        categories=("thanks",),
    )
    return message, personal_values(ctx)


def expanded(batches: list[Any]) -> dict[int, EmailMessage]:
    out = {}
    for b in batches:
        for key, message in zip(b.keys, b.batch.expand(), strict=True):
            out[key] = message
    return out


def test_recipients_that_differ_only_in_their_own_strings_share_one_body() -> None:
    inputs = [(n, *render(name, n)) for n, name in enumerate(["Ada", "Ben", "O'Brien & Co", "Zoë"], 1)]
    batches = group(inputs)
    assert len(batches) == 1
    [b] = batches
    assert "Ada" not in b.batch.html and "tok1" not in b.batch.text
    assert b.keys == (1, 2, 3, 4)
    # Rebuilt from the shared body and the substitutions, each message is exactly its own rendering.
    assert expanded(batches) == {n: m for n, m, _ in inputs}


@pytest.mark.parametrize(
    ("names", "sizes"),
    [
        (["Ada", None, "Ben", None], [2, 2]),  # "there" comes from the template, not from a value
        (["Ada", "Ben", "Cy", "Di"], [4]),
    ],
)
def test_template_logic_splits_groups_but_never_changes_a_message(names: list, sizes: list[int]) -> None:
    inputs = [(n, *render(name, n)) for n, name in enumerate(names, 1)]
    batches = group(inputs)
    assert sorted(len(b.keys) for b in batches) == sorted(sizes)
    assert expanded(batches) == {n: m for n, m, _ in inputs}


def test_batches_hold_at_most_max_size_recipients() -> None:
    inputs = [(n, *render(f"Name{n}", n)) for n in range(1, 8)]
    batches = group(inputs, max_size=3)
    assert [len(b.keys) for b in batches] == [3, 3, 1]
    assert expanded(batches) == {n: m for n, m, _ in inputs}


def test_a_body_already_holding_a_key_goes_alone() -> None:
    message, values = render("Ada", 1)
    odd = EmailMessage(**{**message.__dict__, "text": message.text + " [[sub:t:customer.first_name]]"})
    batches = group([(1, odd, values), (2, *render("Ben", 2))])
    assert sorted(len(b.keys) for b in batches) == [1, 1]
    assert expanded(batches)[1] == odd


def test_oversized_substitutions_go_alone() -> None:
    long_name = "N" * MAX_SUBSTITUTION_BYTES
    batches = group([(1, *render(long_name, 1)), (2, *render("Ben", 2)), (3, *render("Cy", 3))])
    assert sorted(len(b.keys) for b in batches) == [1, 2]
    assert expanded(batches)[1].text.startswith("Hi " + long_name)


def test_a_single_message_is_a_batch_of_one() -> None:
    message, _ = render("Ada", 1)
    assert EmailBatch.single(message).expand() == [message]


def test_personal_values_leave_out_shared_parts_and_tiny_strings() -> None:
    values = personal_values(
        {"customer": {"first_name": "Ada", "vip": True, "n": 7}, "brand": "Northwind", "years": 12}
    )
    assert values == {"customer.first_name": "Ada", "years": "12"}
