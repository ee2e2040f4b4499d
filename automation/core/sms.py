"""SMS length: GSM-7 or UCS-2 encoding and the number of segments. Pure."""

from __future__ import annotations

_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")


def encoding(body: str) -> str:
    """`GSM-7` when every character is in the GSM alphabet, else `UCS-2`."""
    return "GSM-7" if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in body) else "UCS-2"


def segments(body: str) -> int:
    """How many SMS parts the body takes (160/153 GSM-7 septets, 70/67 UCS-2 units)."""
    if encoding(body) == "GSM-7":
        units = sum(2 if c in _GSM_EXTENDED else 1 for c in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if units <= single:
        return 1
    return -(-units // multi)
