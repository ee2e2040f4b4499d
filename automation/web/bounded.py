"""Reading a gzipped request body within a decompressed size limit, without ever holding more.

The web process's body limit (`body_limit`) already bounds the bytes received;
this bounds what they inflate to: decompression stops one byte past the limit,
so a small gzip bomb costs at most the limit in memory.
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
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding != "identity" else None
    out = bytearray()
    async for chunk in request.stream():
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
