"""Reading request bodies with a size limit, before anything parses them."""

from __future__ import annotations

import zlib
from collections.abc import Callable

from fastapi import Request


async def read_body(
    request: Request,
    limit: int,
    *,
    check_start: Callable[[bytes], None] | None = None,
    start_bytes: int = 64 * 1024,
) -> bytes | None:
    """The body, or None as soon as it is known to exceed ``limit`` bytes (by its declared
    length, or while streaming a body sent without one). ``check_start``, if given, sees
    the first ``start_bytes`` (or the whole body, if shorter) once they have arrived and
    may raise to refuse the body before the rest is read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    check = check_start
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if check is not None and size >= start_bytes:
            check(b"".join(chunks)[:start_bytes])
            check = None
    body = b"".join(chunks)
    if check is not None:
        check(body)
    return body


class UnsupportedEncoding(ValueError):
    """A ``Content-Encoding`` this node does not read."""


class Truncated(ValueError):
    """A compressed body that ends before its compressed stream does, or is not one."""


def decoded(body: bytes, encoding: str | None, limit: int) -> bytes | None:
    """``body`` with its ``Content-Encoding`` (none, ``identity`` or ``gzip``) undone,
    or None as soon as the decoded body would exceed ``limit`` bytes: a small
    compressed body never makes this node inflate more than the limit."""
    coding = (encoding or "identity").strip().lower()
    if coding == "identity":
        return body
    if coding != "gzip":
        raise UnsupportedEncoding(coding)
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise Truncated(str(exc)) from exc
    if len(out) > limit or inflater.unconsumed_tail:
        return None
    if not inflater.eof or inflater.unused_data:
        raise Truncated("the gzip stream is incomplete or followed by other data")
    return out
