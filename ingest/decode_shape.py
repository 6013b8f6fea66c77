"""The shape of an ingest body: its media type, and JSON arrays or objects made into NDJSON.

``ingest.decode`` calls these before it decodes lines: ``_media_kind`` reads the Content-Type,
``_array_as_ndjson`` and ``_object_as_line`` turn an ``application/json`` body into the NDJSON
the line decoders take. No I/O here.
"""

from __future__ import annotations

import re

import orjson

from core.errors import BadRequest, UnsupportedMediaType
from ingest.decode_limits import _Limits, _too_many

__all__ = ["ACCEPTED_TYPES"]

_NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}
)
ACCEPTED_TYPES = (*sorted(_NDJSON_TYPES), "application/json", "text/plain")
_UTF8_CHARSETS = frozenset({"utf-8", "utf8"})
_BOM = b"\xef\xbb\xbf"


def _media_kind(content_type: str | None) -> str:
    accepted = ", ".join(ACCEPTED_TYPES)
    mime, *params = (content_type or "").split(";")
    mime = mime.strip().lower()
    for param in params:
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in _UTF8_CHARSETS:
            raise UnsupportedMediaType(
                f"unsupported charset {charset!r} in Content-Type; send UTF-8 text",
                details={"content_type": content_type},
            )
    if mime in _NDJSON_TYPES:
        return "ndjson"
    if mime == "application/json":
        return "json"
    if mime == "text/plain":
        return "text"
    what = f"Content-Type {content_type!r} is not supported" if mime else "Content-Type is missing"
    raise UnsupportedMediaType(
        f"{what}; send one of: {accepted}", details={"content_type": content_type}
    )


_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")


def _object_as_line(body: bytes, start: int) -> bytes:
    """An ``application/json`` body whose first character (at ``start``) is ``{``: one JSON
    object spread over several lines becomes one compact line (one event, as an array element
    would); one line, or NDJSON, stays as it is."""
    end = body.find(b"\n", start)
    if end < 0:
        return body
    first_line = body[start:end]
    try:
        # A first line that is a JSON value by itself starts NDJSON. Checked first because
        # orjson reads the whole of a large body before it reports trailing characters.
        orjson.loads(first_line)
        return body
    except orjson.JSONDecodeError:
        pass
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if first_line.strip(b" \t\r") != b"{":
            return body  # NDJSON, whose bad lines are rejected one by one
        # A lone "{" on the first line is how pretty-printers start one document.
        _check_utf8(body)
        raise BadRequest(
            f"body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}; "
            "send one JSON object, a JSON array, or NDJSON (one object per line)",
            details={"line": exc.lineno, "column": exc.colno},
        ) from exc
    return orjson.dumps(value) if isinstance(value, dict) else body


def _check_utf8(body: bytes) -> None:
    try:
        body.decode()
    except UnicodeDecodeError as exc:
        raise _bad_utf8(exc.start) from exc


def _bad_utf8(offset: int) -> BadRequest:
    return BadRequest(
        f"body is not valid UTF-8: invalid byte at offset {offset}; fix the encoding and "
        "send UTF-8 JSON",
        details={"offset": offset},
    )


# Stands in for a run of invalid bytes while an array is parsed: a noncharacter, so never
# found in sound text by chance (and checked for all the same).
_SENTINEL = "\U0010ffff"
_SENTINEL_BYTES = _SENTINEL.encode()
_ESCAPED_RUNS = re.compile("[\udc80-\udcff]+")


def _array_as_ndjson(body: bytes, limits: _Limits) -> bytes:
    """A JSON array body as NDJSON, one compact element per line (arrays are re-serialised)."""
    try:
        body.decode()
    except UnicodeDecodeError as exc:
        return _bad_utf8_array_as_ndjson(body, exc.start, limits)
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"body is not a valid JSON array: {exc}; send one JSON array or NDJSON lines",
            details={"position": exc.pos},
        ) from exc
    if not isinstance(items, list):
        raise BadRequest("body is not a valid JSON array; send one JSON array or NDJSON lines")
    if len(items) > limits.max_events:
        raise _too_many(len(items), limits)
    # orjson output never holds a raw newline, so each element is exactly one line.
    return b"\n".join(orjson.dumps(item) for item in items)


def _bad_utf8_array_as_ndjson(body: bytes, first_bad: int, limits: _Limits) -> bytes:
    """An array with invalid UTF-8 inside strings, as NDJSON whose lines keep the bad bytes,
    so that only those elements are rejected, as bad NDJSON lines are. The bad bytes are
    parsed as a sentinel character and put back once each element is serialised; when that
    cannot be done unambiguously (bad bytes outside strings, the sentinel in the body) the
    whole body is refused."""
    text = body.decode("utf-8", "surrogateescape")
    if _SENTINEL in text:
        raise _bad_utf8(first_bad)
    runs = [m.group().encode("utf-8", "surrogateescape") for m in _ESCAPED_RUNS.finditer(text)]
    try:
        items = orjson.loads(_ESCAPED_RUNS.sub(_SENTINEL, text))
    except orjson.JSONDecodeError as exc:
        raise _bad_utf8(first_bad) from exc
    if not isinstance(items, list):
        raise _bad_utf8(first_bad)
    if len(items) > limits.max_events:
        raise _too_many(len(items), limits)
    lines = [orjson.dumps(item) for item in items]
    # Fewer sentinels than runs: two keys became equal, or a JSON escape spelled the sentinel.
    if sum(line.count(_SENTINEL_BYTES) for line in lines) != len(runs):
        raise _bad_utf8(first_bad)
    restored = iter(runs)
    for pos, line in enumerate(lines):
        if _SENTINEL_BYTES in line:
            first, *rest = line.split(_SENTINEL_BYTES)
            lines[pos] = first + b"".join(next(restored) + part for part in rest)
    return b"\n".join(lines)
