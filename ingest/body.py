"""Read a request body under a size limit (``core.bodies``), and undo its Content-Encoding
without letting a small bomb become a large allocation."""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping

from core.bodies import read_limited
from core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from core.units import format_size

__all__ = ["SUPPORTED_ENCODINGS", "decompress", "idempotency_key", "read_limited"]

SUPPORTED_ENCODINGS = ("identity", "gzip", "x-gzip", "deflate")
_CHUNK_BYTES = 256 * 1024
# An Idempotency-Key is stored for a day with its scope: a UUID or a hash fits many times over.
MAX_IDEMPOTENCY_KEY = 255
_IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]+")


def idempotency_key(headers: Mapping[str, str]) -> str | None:
    """The request's ``Idempotency-Key``, None when absent or empty: at most 255 visible ASCII
    characters (a 60 KB key was stored as given)."""
    key = headers.get("idempotency-key", "").strip()
    if not key:
        return None
    if len(key) > MAX_IDEMPOTENCY_KEY or not _IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise BadRequest(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters "
            "(a UUID, for example)",
            details={"length": len(key)},
        )
    return key


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body is larger than {format_size(max_bytes)} after decompression; "
        "send smaller batches",
        details={"limit_bytes": max_bytes},
    )


def decompress(body: bytes, content_encoding: str | None, *, max_bytes: int) -> bytes:
    """The decoded body; PayloadTooLarge as soon as it would pass ``max_bytes``."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
        return body
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        # RFC 9110 means zlib-wrapped data, but some clients send a raw deflate stream.
        wbits = zlib.MAX_WBITS if _has_zlib_header(body) else -zlib.MAX_WBITS
    else:
        raise UnsupportedMediaType(
            f"unsupported Content-Encoding {content_encoding!r}; "
            f"supported: {', '.join(SUPPORTED_ENCODINGS)}",
            details={"content_encoding": content_encoding},
        )
    return _inflate(body, wbits, encoding, max_bytes=max_bytes)


def _has_zlib_header(body: bytes) -> bool:
    return len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0


def _inflate(body: bytes, wbits: int, encoding: str, *, max_bytes: int) -> bytes:
    out = bytearray()
    pending = body
    try:
        # Several gzip members may follow each other (RFC 1952 §2.2); each needs a fresh object.
        while pending:
            inflater = zlib.decompressobj(wbits)
            data = pending
            while data:
                # max_length bounds each step, so the output never outgrows the limit by more than
                # one chunk, however well the input compresses.
                out += inflater.decompress(data, _CHUNK_BYTES)
                if len(out) > max_bytes:
                    raise _too_large(max_bytes)
                data = inflater.unconsumed_tail
            out += inflater.flush()
            if len(out) > max_bytes:
                raise _too_large(max_bytes)
            if not inflater.eof:
                raise BadRequest(
                    f"the {encoding} body is truncated; send the complete compressed body",
                    details={"content_encoding": encoding},
                )
            pending = inflater.unused_data
    except zlib.error as exc:
        raise BadRequest(
            f"the body is not valid {encoding} data ({exc}); check the Content-Encoding header",
            details={"content_encoding": encoding},
        ) from exc
    return bytes(out)
