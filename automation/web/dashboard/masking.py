"""Addresses as a viewer sees them: masked as on the CLI's dry run. Editors see them whole."""

from __future__ import annotations

from automation.campaigns.campaign import mask_email


def mask(address: str | None) -> str:
    """`a***@example.com` for an email, `+1555***67` for a phone, `-` for none."""
    if not address:
        return "-"
    if "@" in address:
        return mask_email(address)
    return f"{address[:5]}***{address[-2:]}" if len(address) > 7 else "***"


def shown(address: str | None, full: bool) -> str:
    return (address or "-") if full else mask(address)
