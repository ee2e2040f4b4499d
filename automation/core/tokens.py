"""Signed unsubscribe tokens: one per delivery, so nobody can unsubscribe someone else."""

from __future__ import annotations

import base64
import hashlib
import hmac


def _mac(delivery_id: int, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"unsubscribe:{delivery_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def unsubscribe_token(delivery_id: int, secret: str) -> str:
    return f"{delivery_id}.{_mac(delivery_id, secret)}"


def verify_unsubscribe_token(token: str, secret: str) -> int | None:
    """The delivery id a valid token names, else None."""
    head, _, mac = token.partition(".")
    if not (head.isascii() and head.isdigit() and len(head) <= 18) or not mac:
        return None
    delivery_id = int(head)
    return delivery_id if hmac.compare_digest(mac, _mac(delivery_id, secret)) else None
