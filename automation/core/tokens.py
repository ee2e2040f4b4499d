"""Unsubscribe tokens: one per delivery, sealed so that nobody can unsubscribe someone else.

A token is `KID.SEALED`. SEALED is the delivery id under AES-SIV (deterministic
authenticated encryption, RFC 5297) with a key derived from the secret: without
the secret nobody can read the id, alter it or make a token for another
delivery, and consecutive deliveries get unrelated tokens, so a token reveals
no sequence to walk. KID names the secret that sealed it (derived from it, so
nothing extra is configured); a token is checked with the key its KID names,
which lets the secret be rotated while the previous ones keep their links
working. Tokens of the first format (`ID.MAC`, an HMAC) from mail sent before
are still accepted under any configured secret; none are made any more.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_PURPOSE = b"automation unsubscribe token"
_TOKEN = re.compile(r"([A-Za-z0-9_-]{8})\.([A-Za-z0-9_-]{32})")
_LEGACY = re.compile(r"([0-9]{1,18})\.([A-Za-z0-9_-]{24})")


@functools.lru_cache(maxsize=16)
def _key(secret: str) -> tuple[str, AESSIV]:
    """The key id and the AES-SIV key derived from one secret."""
    material = HKDF(algorithm=hashes.SHA256(), length=70, salt=None, info=_PURPOSE).derive(secret.encode())
    return _b64(material[64:]), AESSIV(material[:64])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unsubscribe_token(delivery_id: int, secret: str) -> str:
    """The token for this delivery, sealed with the current secret."""
    kid, siv = _key(secret)
    return f"{kid}.{_b64(siv.encrypt(delivery_id.to_bytes(8, 'big'), [_PURPOSE]))}"


def verify_unsubscribe_token(token: str, secrets: Sequence[str]) -> int | None:
    """The delivery id a valid token names (sealed with any of `secrets`), else None."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return _legacy(token, secrets)
    for secret in secrets:
        kid, siv = _key(secret)
        if kid == match[1]:
            try:
                return int.from_bytes(siv.decrypt(base64.urlsafe_b64decode(match[2]), [_PURPOSE]), "big")
            except InvalidTag:
                return None
    return None


def _legacy(token: str, secrets: Sequence[str]) -> int | None:
    match = _LEGACY.fullmatch(token)
    if match is None:
        return None
    delivery_id = int(match[1])
    message = f"unsubscribe:{delivery_id}".encode()
    for secret in secrets:
        digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
        if hmac.compare_digest(match[2], _b64(digest[:18])):
            return delivery_id
    return None
