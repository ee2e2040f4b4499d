"""Unsubscribe tokens: sealed ids under a named key, rotation, and no sequence to walk."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
from pathlib import Path

import pytest

from automation.config import load_settings
from automation.core.tokens import unsubscribe_token, verify_unsubscribe_token
from automation.errors import ConfigError

OLD, NEW = "old-secret-" + "o" * 32, "new-secret-" + "n" * 32


def test_a_token_names_its_delivery_under_the_secret_that_made_it() -> None:
    token = unsubscribe_token(42, NEW)
    assert verify_unsubscribe_token(token, [NEW]) == 42
    assert verify_unsubscribe_token(token, ["another-secret"]) is None


def test_a_rotated_secret_keeps_its_links_while_listed_as_previous() -> None:
    sent_before = unsubscribe_token(7, OLD)
    sent_after = unsubscribe_token(8, NEW)
    assert sent_before.split(".")[0] != sent_after.split(".")[0]  # each names its key
    assert verify_unsubscribe_token(sent_before, [NEW, OLD]) == 7
    assert verify_unsubscribe_token(sent_after, [NEW, OLD]) == 8
    assert verify_unsubscribe_token(sent_before, [NEW]) is None  # once dropped, its links stop working


def test_tokens_reveal_no_sequence() -> None:
    tokens = [unsubscribe_token(i, NEW) for i in range(1, 201)]
    sealed = [t.split(".")[1] for t in tokens]
    assert len(set(sealed)) == 200
    assert sorted(sealed) != sealed  # ids in order do not give tokens in order
    for a, b in itertools.pairwise(sealed):
        assert sum(x != y for x, y in zip(a, b, strict=True)) > 16  # neighbours share no structure


def test_any_change_to_a_token_invalidates_it() -> None:
    token = unsubscribe_token(42, NEW)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for position, char in enumerate(token):
        if char == ".":
            continue
        other = alphabet[(alphabet.index(char) + 1) % len(alphabet)]
        changed = token[:position] + other + token[position + 1 :]
        assert verify_unsubscribe_token(changed, [NEW]) is None, changed


@pytest.mark.parametrize("token", ["", ".", "1.é", "é.abc", "²." + "a" * 24, "9" * 40 + ".abc", "a" * 5000])
def test_malformed_tokens_are_refused_without_error(token: str) -> None:
    assert verify_unsubscribe_token(token, [NEW]) is None


def test_links_of_the_first_format_in_mail_already_sent_still_work() -> None:
    digest = hmac.new(OLD.encode(), b"unsubscribe:42", hashlib.sha256).digest()
    legacy = "42." + base64.urlsafe_b64encode(digest[:18]).decode()
    assert verify_unsubscribe_token(legacy, [NEW, OLD]) == 42
    assert verify_unsubscribe_token(legacy, [NEW]) is None
    assert verify_unsubscribe_token("43." + legacy.split(".")[1], [OLD]) is None


def test_an_empty_secret_is_refused_not_replaced_by_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATION_UNSUBSCRIBE_SECRET", "")
    with pytest.raises(ConfigError, match=r"AUTOMATION_UNSUBSCRIBE_SECRET: .*is empty"):
        load_settings()


def test_an_empty_secret_in_the_env_file_is_refused_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AUTOMATION_UNSUBSCRIBE_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("AUTOMATION_UNSUBSCRIBE_SECRET=\n")
    with pytest.raises(ConfigError, match="AUTOMATION_UNSUBSCRIBE_SECRET"):
        load_settings()


def test_previous_secrets_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATION_UNSUBSCRIBE_SECRET", NEW)
    monkeypatch.setenv("AUTOMATION_UNSUBSCRIBE_PREVIOUS_SECRETS", f"{OLD}, older ,")
    assert load_settings().unsubscribe_secrets == [NEW, OLD, "older"]
