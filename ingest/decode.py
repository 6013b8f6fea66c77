"""Decode an ingest body (NDJSON, a JSON array or text lines) into Arrow tables of events, fields.

The hot path of ingest. A batch of plain JSON objects goes through Arrow's C++ JSON reader as a
whole (it releases the GIL); only batches Arrow cannot take (malformed lines, types that change
between lines, arrays, ``message`` keys, strings) are decoded event by event with orjson, and
both ways produce the same tables. No I/O here.

The body's shape (media type, JSON arrays and objects) is handled in ``ingest.decode_shape``,
the Arrow fast path in ``ingest.decode_arrow``; the per-event path is here, over the builders of
``ingest.flatten``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from ingest.decode_arrow import _fast_objects, _fast_on_lines, _look_like_objects, _plain_lines
from ingest.decode_limits import _Limits, _too_many
from ingest.decode_shape import (
    _BOM,
    _LEADING_SPACE,
    ACCEPTED_TYPES,
    _array_as_ndjson,
    _media_kind,
    _object_as_line,
)
from ingest.flatten import (
    EVENTS_SCHEMA,
    EventBuilder,
    EventTables,
    Rejection,
    decode_values,
    drop_bad_utf8,
    flatten,
    json_object_or_none,
    parse_lines,
)

__all__ = ["ACCEPTED_TYPES", "EVENTS_SCHEMA", "DecodedBatch", "Rejection", "decode_events"]


@dataclass(slots=True)
class DecodedBatch:
    """The accepted events and their discovered fields, row for row, plus the rejections."""

    events: pa.Table
    fields: pa.Table
    rejected: list[Rejection] = field(default_factory=list)
    received: int = 0
    # The top-level keys of the events when every event is a JSON object the decoder read
    # whole, else None (see ``EventTables.root_keys``).
    root_keys: frozenset[str] | None = None


def decode_events(
    body: bytes,
    content_type: str | None,
    *,
    now_ms: int,
    max_event_bytes: int = 1 << 20,
    max_events: int = 100_000,
    fast_path: bool = True,
) -> DecodedBatch:
    """Decode one ingest request body; bad events are rejected one by one, never the batch.

    ``fast_path=False`` forces the per-event decoder (the tests check both agree).
    """
    kind = _media_kind(content_type)
    limits = _Limits(now_ms, max_event_bytes, max_events)
    body = body.removeprefix(_BOM)
    if kind == "text":
        return _decode_text(body, limits)
    if kind == "json":
        start = _LEADING_SPACE.match(body).end()  # type: ignore[union-attr]
        head = body[start : start + 1]
        if head == b"[":
            body = _array_as_ndjson(body, limits)
        elif head == b"{":
            body = _object_as_line(body, start)
    return _decode_ndjson(body, limits, fast_path=fast_path)


def split_lines(body: bytes) -> list[bytes]:
    """The non-blank lines of a body, each without its trailing ``\\r``."""
    lines = []
    for line in body.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.strip(b" \t\r"):
            lines.append(line)
    return lines


def _finish(part: EventTables, rejected: list[Rejection], received: int) -> DecodedBatch:
    merged = sorted(rejected + part.rejected, key=lambda r: r.index)
    return DecodedBatch(part.events, part.fields, merged, received, part.root_keys)


def _decode_ndjson(body: bytes, limits: _Limits, *, fast_path: bool) -> DecodedBatch:
    try:
        body.decode()
        utf8_ok = True
    except UnicodeDecodeError:
        utf8_ok = False
    arrow_tried = False
    if fast_path and utf8_ok and (plain := _plain_lines(body)) is not None:
        if len(plain) > limits.max_events:
            raise _too_many(len(plain), limits)
        part = _fast_objects(body, plain, None, limits)
        if part is not None:
            return _finish(part, [], len(plain))
        arrow_tried = True
    lines = split_lines(body)
    if len(lines) > limits.max_events:
        raise _too_many(len(lines), limits)
    received = len(lines)
    index = list(range(received))
    rejected: list[Rejection] = []
    if not utf8_ok:
        lines, index = drop_bad_utf8(lines, index, rejected)
    if fast_path and not arrow_tried and lines and _look_like_objects(lines):
        part = _fast_on_lines(lines, index, limits)
        if part is not None:
            return _finish(part, rejected, received)
    before = len(rejected)
    lines, index, values = parse_lines(lines, index, rejected)
    # Bad lines make Arrow refuse the whole body: without them the rest may still go fast.
    if fast_path and len(rejected) > before and all(isinstance(v, dict) for v in values):
        part = _fast_on_lines(lines, index, limits) if lines else None
        if part is not None:
            return _finish(part, rejected, received)
    part = decode_values(
        lines, index, values, now_ms=limits.now_ms, max_event_bytes=limits.max_event_bytes
    )
    return _finish(part, rejected, received)


def _decode_text(body: bytes, limits: _Limits) -> DecodedBatch:
    lines = split_lines(body)
    if len(lines) > limits.max_events:
        raise _too_many(len(lines), limits)
    rejected: list[Rejection] = []
    lines, index = drop_bad_utf8(lines, list(range(len(lines))), rejected)
    builder = EventBuilder(now_ms=limits.now_ms, max_event_bytes=limits.max_event_bytes)
    for line, i in zip(lines, index, strict=True):
        text = line.decode()
        obj = json_object_or_none(text)
        builder.add(i, None, text, len(line), {} if obj is None else flatten(obj))
    return _finish(builder.part(), rejected, len(lines) + len(rejected))
