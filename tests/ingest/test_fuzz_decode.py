"""Property tests: the Arrow path and the per-event path agree, and no input crashes decoding."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import WatchkeepError
from ingest.decode import DecodedBatch, decode_events
from ingest.flatten import render_number

NOW_MS = 1_717_423_500_000

keys = st.sampled_from(
    ["a", "b", "a.b", "@v", "@@v", "timestamp", "message", "", "x-y", "n", "é"]
) | st.text(max_size=4)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # orjson's range
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(
        ["2024-06-03", "2024-06-03T14:05:00Z", "2024-06-03 14:05:00", "1717423500000", "{}"]
    )
    | st.sampled_from([0, 1_717_423_500_000, 1.5, -1, 253_402_300_799_999])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=12,
)
objects = st.dictionaries(keys, json_values, max_size=6)
# Batches whose lines share types, so that the Arrow path really is taken.
stable_objects = st.fixed_dictionaries(
    {"n": st.integers(-(2**40), 2**40), "s": st.text(max_size=6)},
    optional={
        "timestamp": st.integers(-5, 2**49) | st.sampled_from(["2024-06-03T14:05:00.5Z", "x"]),
        "o": st.fixed_dictionaries({"f": st.floats(allow_nan=False, allow_infinity=False)}),
        "@b": st.booleans(),
        "z": st.none(),
    },
)


def _both(body: bytes, content_type: str) -> DecodedBatch:
    fast = decode_events(body, content_type, now_ms=NOW_MS, max_event_bytes=200)
    slow = decode_events(body, content_type, now_ms=NOW_MS, max_event_bytes=200, fast_path=False)
    assert fast.events.equals(slow.events)
    assert fast.fields.equals(slow.fields), (fast.fields.schema, slow.fields.schema)
    assert fast.rejected == slow.rejected
    assert fast.received == slow.received == fast.events.num_rows + len(fast.rejected)
    assert fast.fields.num_rows == fast.events.num_rows
    return fast


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(objects | stable_objects, max_size=8), st.sampled_from(["\n", "\r\n"]))
def test_fast_and_slow_paths_agree_on_json_objects(items: list[dict[str, Any]], eol: str) -> None:
    body = eol.encode().join(orjson.dumps(item) for item in items)
    _both(body, "application/x-ndjson")


@settings(max_examples=200, deadline=None)
@given(st.lists(stable_objects, min_size=1, max_size=20))
def test_fast_and_slow_paths_agree_on_stable_batches(items: list[dict[str, Any]]) -> None:
    _both(b"\n".join(orjson.dumps(item) for item in items), "application/x-ndjson")


@settings(max_examples=150, deadline=None)
@given(st.lists(json_values, max_size=6))
def test_fast_and_slow_paths_agree_on_json_arrays(items: list[Any]) -> None:
    _both(orjson.dumps(items), "application/json")


line_fragments = st.sampled_from(
    [
        b"{",
        b"}",
        b'"a":',
        b"1",
        b",",
        b"\n",
        b"\r",
        b" ",
        b"[",
        b"]",
        b"NaN",
        b'"t"',
        b"\xff",
        b"\xef\xbb\xbf",
        b"null",
        b'"timestamp":',
        b'"message":',
        b"\\u00e9",
        b"\\ud800",
        b"1e400",
    ]
)
content_types = (
    st.sampled_from(
        [
            "application/x-ndjson",
            "application/json",
            "text/plain",
            "application/jsonl",
            "text/plain; charset=latin-1",
            "image/png",
            "",
        ]
    )
    | st.none()
    | st.text(max_size=20)
)


@settings(max_examples=400, deadline=None)
@given(st.lists(line_fragments, max_size=30).map(b"".join) | st.binary(max_size=200), content_types)
def test_decode_never_crashes(body: bytes, content_type: str | None) -> None:
    try:
        batch = decode_events(body, content_type, now_ms=NOW_MS, max_event_bytes=64)
    except WatchkeepError:
        return
    assert batch.received == batch.events.num_rows + len(batch.rejected)
    assert batch.fields.num_rows == batch.events.num_rows


@settings(max_examples=300, deadline=None)
@given(st.lists(line_fragments, max_size=30).map(b"".join))
def test_fast_and_slow_paths_agree_on_garbage(body: bytes) -> None:
    try:
        _both(body, "application/x-ndjson")
    except WatchkeepError:
        pass


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_render_number_round_trips(x: float) -> None:
    text = render_number(x)
    assert float(text) == x or (x == 0 and float(text) == 0)
    assert ("e" in text) == (abs(x) >= 1e21 or (x != 0 and abs(x) < 1e-7))
