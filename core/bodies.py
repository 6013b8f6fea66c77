"""Read a request body under a size limit, for every route that takes one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from core.errors import PayloadTooLarge

__all__ = ["read_limited"]


async def read_limited(
    headers: Mapping[str, str], stream: AsyncIterator[bytes], max_bytes: int, message: str
) -> bytes:
    """The raw body, refused with ``message`` as soon as it passes ``max_bytes`` (compressed
    or not): a declared Content-Length over the limit is refused before anything is read."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(message, details={"limit_bytes": max_bytes})
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(message, details={"limit_bytes": max_bytes})
        chunks.append(chunk)
    return b"".join(chunks)
