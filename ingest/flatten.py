"""The per-event side of ingest: field discovery (spec logs-insights §3.2), number rendering
(§2.4), and building event and field tables one parsed event at a time.

``ingest.decode`` uses the builders only for batches Arrow's reader cannot take, and both ways
must give the same tables; ``flatten`` and ``render_number`` serve the query engine too. No I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from core.timeparse import parse_event_timestamp
from core.units import format_size

__all__ = [
    "EVENTS_SCHEMA",
    "MAX_FIELDS",
    "EventBuilder",
    "EventTables",
    "Rejection",
    "decode_values",
    "drop_bad_utf8",
    "parse_lines",
    "too_large_reason",
    "Leaf",
    "empty_table",
    "event_from_value",
    "field_name",
    "fields_table",
    "flatten",
    "json_object_or_none",
    "render_number",
]

MAX_FIELDS = 1000
Leaf = str | bool | int | float
_JSON_WHITESPACE = " \t\n\r"
_EXACT_INT_LIMIT = 2.0**53


def field_name(key: str) -> str:
    """A top-level key as a field name: ``@x`` becomes ``@@x``, never shadowing ``@message``."""
    return "@" + key if key.startswith("@") else key


def flatten(
    obj: dict[str, Any], *, into: dict[str, Leaf] | None = None, limit: int = MAX_FIELDS
) -> dict[str, Leaf]:
    """The leaves of a JSON object by dot path (``req.method``, ``labels.0``); null is missing.

    ``into`` receives the leaves (later ones win a collision); once it holds ``limit`` names,
    new names are dropped.
    """
    out: dict[str, Leaf] = {} if into is None else into
    # An explicit stack, not recursion: orjson accepts nesting deeper than Python's recursion limit.
    stack: list[tuple[str, Any]] = [(field_name(k), v) for k, v in reversed(obj.items())]
    while stack:
        name, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{name}.{k}", v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((f"{name}.{i}", value[i]) for i in range(len(value) - 1, -1, -1))
        elif value is None:
            continue
        elif name in out or len(out) < limit:
            out[name] = value
    return out


def json_object_or_none(text: str) -> dict[str, Any] | None:
    """The object ``text`` holds when, ignoring surrounding whitespace, it is one JSON object."""
    if not text.lstrip(_JSON_WHITESPACE).startswith("{"):
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def render_number(x: float) -> str:
    """A number as query results show it (spec §2.4): ``42``, ``0.125``, ``1e+21``, ``NaN``."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x.is_integer() and abs(x) < _EXACT_INT_LIMIT:
        return str(int(x))
    # repr gives the shortest round-trip digits; only its exponent thresholds differ from
    # JavaScript's Number.prototype.toString, so re-place the decimal point by that rule.
    # ``point`` is JavaScript's n: x = 0.digits * 10**point.
    mantissa, _, exp_text = repr(abs(x)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    joined = int_part + frac_part
    digits = joined.lstrip("0")
    point = len(int_part) + int(exp_text or "0") - (len(joined) - len(digits))
    digits = digits.rstrip("0") or "0"
    sign = "-" if x < 0 else ""
    count = len(digits)
    if count <= point <= 21:
        return sign + digits + "0" * (point - count)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    # JavaScript itself switches below 1e-6; spec §2.4 fixes the threshold at 1e-7, and wins.
    if -7 < point <= 0:
        return sign + "0." + "0" * -point + digits
    exponent = point - 1
    fraction = "." + digits[1:] if count > 1 else ""
    return f"{sign}{digits[0]}{fraction}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"


def _as_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _render(value: Leaf) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    return render_number(_as_float(value))


def _column(values: list[Leaf | None]) -> pa.Array:
    kinds = {type(v) for v in values if v is not None}
    if kinds == {str}:
        return pa.array(values, pa.string())
    if kinds == {bool}:
        return pa.array(values, pa.bool_())
    if kinds <= {int, float}:
        return pa.array(
            [None if v is None else _as_float(v) for v in values],  # type: ignore[arg-type]
            pa.float64(),
        )
    # A field whose type varies within the batch is a string column (DESIGN.md, Contracts).
    return pa.array([None if v is None else _render(v) for v in values], pa.string())


def empty_table(num_rows: int) -> pa.Table:
    """A table with ``num_rows`` rows and no columns."""
    return pa.table({"": pa.nulls(num_rows)}).drop_columns([""])


def fields_table(rows: Iterable[Mapping[str, Leaf]]) -> pa.Table:
    """One column per field name (sorted), typed float64, bool or string; missing is null."""
    row_list = list(rows)
    names = sorted({name for row in row_list for name in row})
    if not names:
        return empty_table(len(row_list))
    columns = [_column([row.get(name) for row in row_list]) for name in names]
    return pa.Table.from_arrays(columns, names=names)


def event_from_value(
    line: bytes, value: dict[str, Any] | str
) -> tuple[object, str, dict[str, Leaf]]:
    """(raw ``timestamp`` or None, message, fields) of one parsed NDJSON line.

    ``line`` is the line as received: an object without ``message`` is stored as exactly that,
    and so is one whose ``message`` is null (null is missing, as for every field). Any other
    ``message`` that is not a string is stored as its compact JSON text.
    """
    if isinstance(value, str):
        obj = json_object_or_none(value)
        return None, value, {} if obj is None else flatten(obj)
    stamp = value.get("timestamp")
    raw = value.get("message")
    if raw is None:
        return stamp, line.decode(), flatten(value)
    message = raw if isinstance(raw, str) else orjson.dumps(raw).decode()
    fields = flatten({k: v for k, v in value.items() if k != "message" and k != "timestamp"})
    obj = json_object_or_none(message)
    if obj is not None:
        flatten(obj, into=fields)
    return stamp, message, fields


EVENTS_SCHEMA = pa.schema(
    [
        pa.field("ts_ms", pa.int64(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("message_bytes", pa.int32(), nullable=False),
    ]
)

_JSON_KINDS = {int: "number", float: "number", bool: "boolean", list: "array", type(None): "null"}


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event of the batch that was not accepted, and why (shown to the client)."""

    index: int
    reason: str


def too_large_reason(event_bytes: int, max_event_bytes: int) -> str:
    """The rejection reason of an event over the limit."""
    return f"event is {event_bytes} bytes; the limit is {format_size(max_event_bytes)}"


@dataclass(slots=True)
class EventTables:
    """Accepted events and their fields, row for row, and the events rejected on the way."""

    events: pa.Table
    fields: pa.Table
    rejected: list[Rejection]
    # Every top-level key of every event, when the decoder saw them all at once (Arrow's
    # reader, which keeps a column even for a key whose values are all null); else None.
    root_keys: frozenset[str] | None = None


def drop_bad_utf8(
    lines: list[bytes], index: list[int], rejected: list[Rejection]
) -> tuple[list[bytes], list[int]]:
    good_lines, good_index = [], []
    for line, i in zip(lines, index, strict=True):
        try:
            line.decode()
        except UnicodeDecodeError as exc:
            rejected.append(Rejection(i, f"invalid UTF-8 at byte {exc.start} of the event"))
            continue
        good_lines.append(line)
        good_index.append(i)
    return good_lines, good_index


def parse_lines(
    lines: list[bytes], index: list[int], rejected: list[Rejection]
) -> tuple[list[bytes], list[int], list[Any]]:
    kept_lines, kept_index, values = [], [], []
    for line, i in zip(lines, index, strict=True):
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            rejected.append(Rejection(i, f"malformed JSON: {str(exc)[:120]}"))
            continue
        if not isinstance(value, dict | str):
            kind = _JSON_KINDS.get(type(value), type(value).__name__)
            rejected.append(Rejection(i, f"expected a JSON object or string, got {kind}"))
            continue
        kept_lines.append(line)
        kept_index.append(i)
        values.append(value)
    return kept_lines, kept_index, values


class EventBuilder:
    """Collects the events of the per-event path, rejecting those over the size limit or with a
    bad timestamp (in that order, as the Arrow path does).

    The limit applies to the whole event: its line as received (``event_bytes``), which holds
    the message and every other field, or the message if that is longer (re-serialised).
    """

    def __init__(self, *, now_ms: int, max_event_bytes: int) -> None:
        self.now_ms = now_ms
        self.max_event_bytes = max_event_bytes
        self.ts: list[int] = []
        self.messages: list[str] = []
        self.sizes: list[int] = []
        self.fields: list[dict[str, Leaf]] = []
        self.rejected: list[Rejection] = []

    def add(
        self,
        i: int,
        stamp: object,
        message: str,
        size: int,
        fields: dict[str, Leaf],
        *,
        event_bytes: int = 0,
    ) -> None:
        if max(size, event_bytes) > self.max_event_bytes:
            reason = too_large_reason(max(size, event_bytes), self.max_event_bytes)
            self.rejected.append(Rejection(i, reason))
            return
        try:
            ts_ms = self.now_ms if stamp is None else parse_event_timestamp(stamp)
        except ValueError as exc:
            self.rejected.append(Rejection(i, str(exc)))
            return
        self.ts.append(ts_ms)
        self.messages.append(message)
        self.sizes.append(size)
        self.fields.append(fields)

    def part(self) -> EventTables:
        events = pa.Table.from_arrays(
            [
                pa.array(self.ts, pa.int64()),
                pa.array(self.messages, pa.string()),
                pa.array(self.sizes, pa.int32()),
            ],
            schema=EVENTS_SCHEMA,
        )
        return EventTables(events, fields_table(self.fields), self.rejected)


def decode_values(
    lines: list[bytes], index: list[int], values: list[Any], *, now_ms: int, max_event_bytes: int
) -> EventTables:
    """The events of parsed NDJSON lines (objects or strings), one at a time."""
    builder = EventBuilder(now_ms=now_ms, max_event_bytes=max_event_bytes)
    for line, i, value in zip(lines, index, values, strict=True):
        stamp, message, fields = event_from_value(line, value)
        size = len(message.encode())
        builder.add(i, stamp, message, size, fields, event_bytes=len(line))
    return builder.part()


# The Arrow fast path. It answers None whenever the per-event path must decide instead.
