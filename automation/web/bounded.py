"""Reading a request body within a size limit, gzip included, without ever holding more.

The limit applies to the bytes received and to the decompressed size;
decompression stops one byte past it, so a small gzip bomb costs at most the
limit in memory.
"""

from __future__ import annotations

import zlib

from starlette.requests import Request


class TooLarge(Exception):
    """The body is over the limit."""


class BadEncoding(Exception):
    """The body is not in the encoding it declares."""


async def read_bounded(request: Request, limit: int) -> bytes:
    """The body, decompressed when `Content-Encoding: gzip`; `TooLarge` past `limit` bytes."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip"):
        raise BadEncoding(f"Content-Encoding {encoding} is not supported (gzip is)")
    declared = request.headers.get("content-length", "")
    if encoding == "identity" and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding != "identity" else None
    out = bytearray()
    raw = 0
    async for chunk in request.stream():
        raw += len(chunk)
        if raw > limit:
            raise TooLarge
        if inflate is None:
            out += chunk
        else:
            try:
                while chunk and len(out) <= limit:
                    out += inflate.decompress(chunk, limit + 1 - len(out))
                    chunk = inflate.unconsumed_tail
            except zlib.error:
                raise BadEncoding("the body is not valid gzip") from None
        if len(out) > limit:
            raise TooLarge
    if inflate is not None and not inflate.eof:
        raise BadEncoding("the gzip body is truncated")
    return bytes(out)
