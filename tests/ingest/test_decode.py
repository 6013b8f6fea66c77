"""decode_events, flatten, render_number and decompress, as tables of cases.

Every decode case runs twice, through the Arrow fast path and the forced per-event path, and
both must give the same tables.
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import orjson
import pyarrow as pa
import pytest

from core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from ingest.body import decompress
from ingest.decode import EVENTS_SCHEMA, DecodedBatch, decode_events
from ingest.flatten import flatten, render_number

NOW_MS = 1_717_423_500_000
NDJSON = "application/x-ndjson"


def decode(body: bytes, content_type: str = NDJSON, **limits: int) -> DecodedBatch:
    fast = decode_events(body, content_type, now_ms=NOW_MS, **limits)
    slow = decode_events(body, content_type, now_ms=NOW_MS, fast_path=False, **limits)
    assert fast.events.schema == EVENTS_SCHEMA
    assert fast.events.equals(slow.events)
    assert fast.fields.equals(slow.fields), (fast.fields.schema, slow.fields.schema)
    assert fast.rejected == slow.rejected
    assert fast.received == slow.received == fast.events.num_rows + len(fast.rejected)
    assert fast.fields.num_rows == fast.events.num_rows
    return fast


def rows(batch: DecodedBatch) -> list[dict[str, Any]]:
    fields = batch.fields.to_pylist()
    return [
        {**event, "fields": {k: v for k, v in f.items() if v is not None}}
        for event, f in zip(batch.events.to_pylist(), fields, strict=True)
    ]


ACCEPTED_TYPES = [
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/json",
    "Application/X-NDJSON; charset=UTF-8",
    'application/json; charset="utf-8"',
]


@pytest.mark.parametrize("content_type", ACCEPTED_TYPES)
def test_json_content_types(content_type: str) -> None:
    batch = decode(b'{"a":1}\n', content_type)
    assert batch.events.column("message").to_pylist() == ['{"a":1}']


REFUSED_TYPES = [
    ("missing", None, "Content-Type is missing"),
    ("empty", "", "Content-Type is missing"),
    ("xml", "application/xml", "'application/xml' is not supported"),
    ("latin1", "application/x-ndjson; charset=latin-1", "charset 'latin-1'"),
]


@pytest.mark.parametrize(
    ("content_type", "fragment"), [c[1:] for c in REFUSED_TYPES], ids=[c[0] for c in REFUSED_TYPES]
)
def test_refused_content_types(content_type: str | None, fragment: str) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        decode_events(b"{}", content_type, now_ms=NOW_MS)
    assert fragment in info.value.message
    if "charset" not in fragment:
        assert "application/x-ndjson" in info.value.message and "text/plain" in info.value.message


EVENT_CASES: list[tuple[str, bytes, list[dict[str, Any]]]] = [
    (
        "object-without-message-is-its-line",
        b'{"level":"INFO", "n": 3}\n',
        [
            {
                "ts_ms": NOW_MS,
                "message": '{"level":"INFO", "n": 3}',
                "message_bytes": 24,
                "fields": {"level": "INFO", "n": 3.0},
            }
        ],
    ),
    (
        "timestamp-key-sets-time-and-stays",
        b'{"timestamp":1000,"a":true}',
        [
            {
                "ts_ms": 1000,
                "message": '{"timestamp":1000,"a":true}',
                "message_bytes": 27,
                "fields": {"timestamp": 1000.0, "a": True},
            }
        ],
    ),
    (
        "rfc3339-timestamp-stays-text",
        b'{"timestamp":"2024-06-03T14:05:00Z","d":"2024-06-03"}',
        [
            {
                "ts_ms": NOW_MS,
                "message": '{"timestamp":"2024-06-03T14:05:00Z","d":"2024-06-03"}',
                "message_bytes": 53,
                "fields": {"timestamp": "2024-06-03T14:05:00Z", "d": "2024-06-03"},
            }
        ],
    ),
    (
        "nested-and-arrays-flatten",
        b'{"req":{"method":"GET","h":{"x-id":"7"}},"labels":["a","b"],"hops":[{"ip":"x"}]}',
        [
            {
                "ts_ms": NOW_MS,
                "message": '{"req":{"method":"GET","h":{"x-id":"7"}},"labels":["a","b"],'
                '"hops":[{"ip":"x"}]}',
                "message_bytes": 80,
                "fields": {
                    "req.method": "GET",
                    "req.h.x-id": "7",
                    "labels.0": "a",
                    "labels.1": "b",
                    "hops.0.ip": "x",
                },
            }
        ],
    ),
    (
        "at-keys-get-an-extra-at-nulls-are-missing",
        b'{"@version":1,"n":null,"o":{"@k":"v"}}',
        [
            {
                "ts_ms": NOW_MS,
                "message": '{"@version":1,"n":null,"o":{"@k":"v"}}',
                "message_bytes": 38,
                "fields": {"@@version": 1.0, "o.@k": "v"},
            }
        ],
    ),
    (
        "message-string-with-json-object",
        b'{"message":" {\\"a\\":{\\"b\\":1}} ","timestamp":5,"env":"prod","a.b":"outer"}',
        [
            {
                "ts_ms": 5,
                "message": ' {"a":{"b":1}} ',
                "message_bytes": 15,
                "fields": {"env": "prod", "a.b": 1.0},
            }
        ],
    ),
    (
        "message-object-becomes-compact-text",
        b'{"message": {"k": [1, 2]}, "x": "y"}',
        [
            {
                "ts_ms": NOW_MS,
                "message": '{"k":[1,2]}',
                "message_bytes": 11,
                "fields": {"x": "y", "k.0": 1.0, "k.1": 2.0},
            }
        ],
    ),
    (
        "null-message-is-missing-the-line-is-the-message",
        b'{"message":null,"a":1}\n',
        [
            {
                "ts_ms": NOW_MS,
                "message": '{"message":null,"a":1}',
                "message_bytes": 22,
                "fields": {"a": 1.0},
            }
        ],
    ),
    (
        "null-message-with-timestamp",
        b'{"timestamp":5,"message":null}',
        [
            {
                "ts_ms": 5,
                "message": '{"timestamp":5,"message":null}',
                "message_bytes": 30,
                "fields": {"timestamp": 5.0},
            }
        ],
    ),
    (
        "number-message-becomes-its-json-text",
        b'{"message":42,"a":"b"}',
        [{"ts_ms": NOW_MS, "message": "42", "message_bytes": 2, "fields": {"a": "b"}}],
    ),
    (
        "json-string-line-is-the-message",
        b'"plain words"\n"{\\"a\\":true}"\n',
        [
            {"ts_ms": NOW_MS, "message": "plain words", "message_bytes": 11, "fields": {}},
            {"ts_ms": NOW_MS, "message": '{"a":true}', "message_bytes": 10, "fields": {"a": True}},
        ],
    ),
    (
        "crlf-and-blank-lines",
        b'{"a":1}\r\n\r\n   \n{"a":2}\r\n',
        [
            {"ts_ms": NOW_MS, "message": '{"a":1}', "message_bytes": 7, "fields": {"a": 1.0}},
            {"ts_ms": NOW_MS, "message": '{"a":2}', "message_bytes": 7, "fields": {"a": 2.0}},
        ],
    ),
    (
        "type-change-becomes-string-rendered",
        b'{"v":1}\n{"v":"x"}\n{"v":true}\n{"v":0.5}\n{"v":1e21}\n',
        [
            {"ts_ms": NOW_MS, "message": m, "message_bytes": len(m), "fields": {"v": v}}
            for m, v in [
                ('{"v":1}', "1"),
                ('{"v":"x"}', "x"),
                ('{"v":true}', "1"),
                ('{"v":0.5}', "0.5"),
                ('{"v":1e21}', "1e+21"),
            ]
        ],
    ),
    (
        "dotted-key-collision-later-wins",
        b'{"a.b":1,"a":{"b":2}}',
        [
            {
                "ts_ms": NOW_MS,
                "message": '{"a.b":1,"a":{"b":2}}',
                "message_bytes": 21,
                "fields": {"a.b": 2.0},
            }
        ],
    ),
    (
        "utf8-message-bytes",
        '{"msg":"héllo ✓"}'.encode(),
        [
            {
                "ts_ms": NOW_MS,
                "message": '{"msg":"héllo ✓"}',
                "message_bytes": 20,
                "fields": {"msg": "héllo ✓"},
            }
        ],
    ),
    ("empty-body", b"", []),
    ("only-blank-lines", b"\n \n\t\r\n", []),
]


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in EVENT_CASES], ids=[c[0] for c in EVENT_CASES]
)
def test_ndjson_events(body: bytes, expected: list[dict[str, Any]]) -> None:
    batch = decode(body)
    assert batch.rejected == []
    assert rows(batch) == expected


REJECT_CASES = [
    ("malformed", b'{"a":1}\n{"a":\n{"a":3}', [(1, "malformed JSON: ")]),
    ("number", b'{"a":1}\n42\n', [(1, "expected a JSON object or string, got number")]),
    ("array", b"[1]\n", [(0, "expected a JSON object or string, got array")]),
    ("null", b"null\n", [(0, "expected a JSON object or string, got null")]),
    ("bool", b'{"a":1}\ntrue', [(1, "got boolean")]),
    ("nan-is-not-json", b'{"a":1}\n{"a":NaN}\n', [(1, "malformed JSON")]),
    ("two-objects-on-a-line", b'{"a":1} {"b":2}\n{"a":3}', [(0, "malformed JSON")]),
    ("bom-inside", b'{"a":1}\n\xef\xbb\xbf{"a":2}', [(1, "malformed JSON")]),
    ("invalid-utf8", b'{"a":1}\n{"a":"\xff"}\n', [(1, "invalid UTF-8 at byte 6 of the event")]),
    ("bad-timestamp", b'{"timestamp":"yesterday"}\n{"a":1}', [(0, "timestamp: expected")]),
    ("timestamp-out-of-range", b'{"timestamp":-1}\n{"a":1}', [(0, "-1 is outside the years")]),
    ("timestamp-in-message-object", b'{"message":"m","timestamp":true}', [(0, "got True")]),
    ("blank-lines-get-no-index", b'\n\n{"a":1}\n\nnope\n', [(1, "malformed JSON")]),
]


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in REJECT_CASES], ids=[c[0] for c in REJECT_CASES]
)
def test_ndjson_rejections(body: bytes, expected: list[tuple[int, str]]) -> None:
    batch = decode(body)
    got = [
        (r.index, fragment in r.reason)
        for r, (_, fragment) in zip(batch.rejected, expected, strict=True)
    ]
    assert got == [(index, True) for index, _ in expected], batch.rejected


def test_rejected_events_do_not_stop_the_good_ones() -> None:
    body = b'{"a":1}\n{bad\n{"timestamp":"x"}\n{"a":2,"b":"y"}\n'
    batch = decode(body)
    assert [r.index for r in batch.rejected] == [1, 2]
    assert batch.events.column("message").to_pylist() == ['{"a":1}', '{"a":2,"b":"y"}']
    assert batch.fields.to_pylist() == [{"a": 1.0, "b": None}, {"a": 2.0, "b": "y"}]


@pytest.mark.parametrize(
    ("limit", "reason"),
    [(1 << 20, "event is 1048584 bytes; the limit is 1 MiB"), (1024, "the limit is 1 KiB")],
    ids=["mib", "kib"],
)
def test_event_size_limit(limit: int, reason: str) -> None:
    big = b'{"a":"' + b"x" * max(limit, 1 << 20) + b'"}'
    batch = decode(big + b'\n{"a":"small"}', max_event_bytes=limit)
    assert [r.index for r in batch.rejected] == [0]
    assert reason in batch.rejected[0].reason
    assert batch.events.column("message").to_pylist() == ['{"a":"small"}']
    assert batch.fields.column_names == ["a"]


SMALL = b'\n{"a":"small"}'
SIZE_CASES = [
    # (name, body, content type, rejected indexes): the limit (1 KiB here) is on the whole event
    ("big-field-beside-message", orjson.dumps({"message": "m", "pad": "x" * 2000}) + SMALL, [0]),
    ("big-message", orjson.dumps({"message": "x" * 2000}) + SMALL, [0]),
    ("big-object-without-message", orjson.dumps({"pad": "x" * 2000}) + SMALL, [0]),
    ("escapes-count-as-received", b'{"message":"' + b"\\n" * 600 + b'"}' + SMALL, [0]),
    ("just-under", orjson.dumps({"message": "m", "pad": "x" * 990}) + SMALL, []),
    ("array-element", orjson.dumps([{"message": "m", "pad": "x" * 2000}, "ok"]), [0]),
    ("text-line", b"x" * 2000 + b"\nok", [0]),
]
SIZE_TYPES = {"array-element": "application/json", "text-line": "text/plain"}


@pytest.mark.parametrize(("name", "body", "rejected"), SIZE_CASES, ids=[c[0] for c in SIZE_CASES])
def test_event_size_limit_is_on_the_whole_event(
    name: str, body: bytes, rejected: list[int]
) -> None:
    batch = decode(body, SIZE_TYPES.get(name, NDJSON), max_event_bytes=1024)
    assert batch.events.num_rows == 2 - len(rejected)
    assert [r.index for r in batch.rejected] == rejected
    assert all("the limit is 1 KiB" in r.reason for r in batch.rejected)
    assert all(size <= 1024 for size in batch.events.column("message_bytes").to_pylist())


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{}\n" * 11, NDJSON),
        (b"[" + b"{}," * 10 + b"{}]", "application/json"),
        (b"x\n" * 11, "text/plain"),
    ],
    ids=["ndjson", "array", "text"],
)
def test_too_many_events(body: bytes, content_type: str) -> None:
    with pytest.raises(PayloadTooLarge, match="11 events; the limit is 10"):
        decode_events(body, content_type, now_ms=NOW_MS, max_events=10)


def test_json_array_body() -> None:
    batch = decode(b' [{"b": 2, "a": [1]}, "words", 7, {"message": "m"}]', "application/json")
    assert batch.rejected[0].index == 2 and "got number" in batch.rejected[0].reason
    assert batch.events.column("message").to_pylist() == ['{"b":2,"a":[1]}', "words", "m"]
    assert batch.received == 4


BAD_JSON_BODIES = [
    ("truncated-array", b"[1,", "body is not a valid JSON array"),
    ("bad-byte-outside-strings", b'[{"a":1}\xff]', "invalid byte at offset 8; fix the encoding"),
    ("bad-bytes-make-equal-keys", b'[{"a\xff":1,"a\xfe":2}]', "invalid byte at offset 4"),
    ("sentinel-in-body", '["\U0010ffff", "'.encode() + b'\xff"]', "invalid byte at offset 10"),
    ("not-an-array", b"[1]]", "not a valid JSON array"),
    (
        "pretty-object-with-an-error",
        b'{\n  "a": 1,\n  "b": \n}\n',
        "body is not valid JSON: unexpected character, expected a JSON value at line 4, column 1",
    ),
    ("pretty-object-bad-utf8", b'{\n  "a": "\xff"\n}', "invalid byte at offset 10"),
]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [c[1:] for c in BAD_JSON_BODIES],
    ids=[c[0] for c in BAD_JSON_BODIES],
)
def test_bad_json_body(body: bytes, fragment: str) -> None:
    for fast_path in (True, False):
        with pytest.raises(BadRequest, match=fragment):
            decode_events(body, "application/json", now_ms=NOW_MS, fast_path=fast_path)


def test_invalid_utf8_in_an_array_rejects_only_its_elements() -> None:
    body = b'[{"a":"ok"}, {"b":"bad \xff here"}, "\xc3(", {"c\xe2\x82":1}, {"d":"\xc3\xa9"}]'
    batch = decode(body, "application/json")
    assert [(r.index, r.reason) for r in batch.rejected] == [
        (1, "invalid UTF-8 at byte 10 of the event"),
        (2, "invalid UTF-8 at byte 1 of the event"),
        (3, "invalid UTF-8 at byte 3 of the event"),
    ]
    assert batch.events.column("message").to_pylist() == ['{"a":"ok"}', '{"d":"é"}']
    assert batch.received == 5


JSON_DOCUMENTS = [
    # (name, body, messages): application/json takes one object, even over several lines
    ("pretty-object-with-message", b'{\n "message":"hi"\n}', ["hi"]),
    (
        "pretty-object-is-compacted",
        b'\n{\n  "a": 1,\n  "b": {"c": true}\r\n}\n',
        ['{"a":1,"b":{"c":true}}'],
    ),
    ("object-split-mid-line", b'{"a": 1,\n "b": 2}', ['{"a":1,"b":2}']),
    ("one-line-object-keeps-its-text", b' {"a": 1}\n', [' {"a": 1}']),
    ("ndjson-stays-lines", b'{"message":"x"}\n{"message":"y"}', ["x", "y"]),
]


@pytest.mark.parametrize(
    ("body", "messages"), [c[1:] for c in JSON_DOCUMENTS], ids=[c[0] for c in JSON_DOCUMENTS]
)
def test_json_object_body(body: bytes, messages: list[str]) -> None:
    batch = decode(body, "application/json")
    assert batch.rejected == []
    assert batch.events.column("message").to_pylist() == messages


def test_ndjson_type_keeps_line_semantics_for_a_pretty_object() -> None:
    batch = decode(b'{\n "message":"hi"\n}', NDJSON)
    assert [r.index for r in batch.rejected] == [0, 1, 2]


def test_json_ndjson_with_a_bad_first_line_rejects_only_that_line() -> None:
    batch = decode(b'{broken\n{"a":1}', "application/json")
    assert [r.index for r in batch.rejected] == [0]
    assert batch.events.column("message").to_pylist() == ['{"a":1}']


def test_json_without_bracket_is_ndjson() -> None:
    batch = decode(b'{"a":1}\n{"a":2}\n', "application/json")
    assert batch.events.num_rows == 2


def test_text_plain() -> None:
    body = b'GET /x 200\r\n\n{"a": {"b": 1}}\nbad \xff byte\n'
    batch = decode(body, "text/plain; charset=utf-8")
    assert batch.events.column("message").to_pylist() == ["GET /x 200", '{"a": {"b": 1}}']
    assert batch.events.column("ts_ms").to_pylist() == [NOW_MS, NOW_MS]
    assert batch.fields.to_pylist() == [{"a.b": None}, {"a.b": 1.0}]
    assert [(r.index, r.reason) for r in batch.rejected] == [
        (2, "invalid UTF-8 at byte 4 of the event")
    ]


def test_field_columns_are_typed_and_sorted() -> None:
    batch = decode(b'{"z":1,"b":true,"a":"s","n":{"x":2.5}}\n{"z":2}')
    assert batch.fields.schema == pa.schema(
        [("a", pa.string()), ("b", pa.bool_()), ("n.x", pa.float64()), ("z", pa.float64())]
    )


def test_field_limit_per_event() -> None:
    obj = {f"k{i:04d}": i for i in range(1005)}
    batch = decode(orjson.dumps(obj))
    assert batch.fields.num_columns == 1000
    assert batch.fields.column_names[-1] == "k0999"


FLATTEN_CASES = [
    ("nested", {"a": {"b": {"c": 1}}}, {"a.b.c": 1}),
    ("arrays", {"l": [1, [2, {"x": None, "y": 3}]]}, {"l.0": 1, "l.1.0": 2, "l.1.1.y": 3}),
    ("empty-containers", {"o": {}, "l": []}, {}),
    ("at-top-level-only", {"@t": {"@u": 1}}, {"@@t.@u": 1}),
    ("empty-key", {"": {"": 1}}, {".": 1}),
    ("collision-later-wins", {"a": {"b": 1}, "a.b": 2}, {"a.b": 2}),
]


@pytest.mark.parametrize(
    ("obj", "expected"), [c[1:] for c in FLATTEN_CASES], ids=[c[0] for c in FLATTEN_CASES]
)
def test_flatten(obj: dict[str, Any], expected: dict[str, Any]) -> None:
    assert flatten(obj) == expected


def test_flatten_deep_nesting_does_not_recurse() -> None:
    obj: dict[str, Any] = {"v": 1}
    for _ in range(5000):
        obj = {"k": obj}
    assert list(flatten(obj).values()) == [1]


RENDER_CASES = [
    ("int", 42.0, "42"),
    ("negative-int", -7.0, "-7"),
    ("negative-zero", -0.0, "0"),
    ("thirds", 10 / 3, "3.3333333333333335"),
    ("eighth", 0.125, "0.125"),
    ("trailing-zero-source", 7.10, "7.1"),
    ("2^53", 2.0**53, "9007199254740992"),
    ("big-integral", 1e20, "100000000000000000000"),
    ("1e21", 1e21, "1e+21"),
    ("big-fraction", 1.5e22, "1.5e+22"),
    ("threshold-1e-7-is-decimal", 1e-7, "0.0000001"),
    ("below-threshold", 9.99e-8, "9.99e-8"),
    ("small-fraction", 1.25e-8, "1.25e-8"),
    ("just-above-threshold", 1.5e-7, "0.00000015"),
    ("decimal-small", 0.000001, "0.000001"),
    ("decimal", 123.456, "123.456"),
    ("nan", float("nan"), "NaN"),
    ("inf", float("inf"), "Infinity"),
    ("minus-inf", float("-inf"), "-Infinity"),
    ("max", 1.7976931348623157e308, "1.7976931348623157e+308"),
    ("min-subnormal", 5e-324, "5e-324"),
]


@pytest.mark.parametrize(
    ("x", "expected"), [c[1:] for c in RENDER_CASES], ids=[c[0] for c in RENDER_CASES]
)
def test_render_number(x: float, expected: str) -> None:
    assert render_number(x) == expected
    if expected not in ("NaN", "Infinity", "-Infinity"):
        assert float(expected) == x


PAYLOAD = b'{"a":1}\n' * 1000


def _gzip_twice(data: bytes) -> bytes:
    return gzip.compress(data[:100]) + gzip.compress(data[100:])


DECOMPRESS_OK = [
    ("none", None, PAYLOAD),
    ("identity", "identity", PAYLOAD),
    ("gzip", "gzip", gzip.compress(PAYLOAD)),
    ("x-gzip-uppercase", "X-GZIP", gzip.compress(PAYLOAD)),
    ("gzip-members", "gzip", _gzip_twice(PAYLOAD)),
    ("deflate-zlib", "deflate", zlib.compress(PAYLOAD)),
    ("deflate-raw", "deflate", zlib.compress(PAYLOAD, wbits=-15)),
]


@pytest.mark.parametrize(
    ("encoding", "body"), [c[1:] for c in DECOMPRESS_OK], ids=[c[0] for c in DECOMPRESS_OK]
)
def test_decompress(encoding: str | None, body: bytes) -> None:
    assert decompress(body, encoding, max_bytes=1 << 20) == PAYLOAD


def test_decompress_bomb_stops_early() -> None:
    bomb = gzip.compress(b"\0" * (64 << 20))
    with pytest.raises(PayloadTooLarge, match="larger than 16 MiB after decompression; send"):
        decompress(bomb, "gzip", max_bytes=16 << 20)


@pytest.mark.parametrize(
    ("encoding", "body", "error", "fragment"),
    [
        ("gzip", b"not gzip", BadRequest, "not valid gzip"),
        ("gzip", gzip.compress(PAYLOAD)[:-20], BadRequest, "gzip body is truncated"),
        ("br", b"x", UnsupportedMediaType, "supported: identity, gzip, x-gzip, deflate"),
        (None, PAYLOAD, PayloadTooLarge, "larger than 1 KiB"),
    ],
    ids=["corrupt", "truncated", "unknown", "identity-too-large"],
)
def test_decompress_errors(
    encoding: str | None, body: bytes, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=fragment):
        decompress(body, encoding, max_bytes=1024)
