"""FilterLogEvents with filter patterns (spec metrics-and-alarms.md §4.3) against a real server."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import RunningServer

T0 = 1_700_000_000_000
NDJSON = {"Content-Type": "application/x-ndjson"}

TEXT_EVENTS = [
    "ERROR Failed to process order 17",
    "ERROR: disk full",
    "WARN retrying order 17",
    "INFO Exiting normally",
    "ERROR Exiting after failure",
    "error in lower case",
]

JSON_EVENTS: list[dict[str, Any]] = [
    {"level": "error", "latency": 250, "user": {"id": 7, "name": "ann"}, "tags": ["a", "b"]},
    {"level": "info", "latency": 1200, "user": {"id": 8, "name": "bob"}, "ok": True},
    {"level": "errata", "latency": "90", "user": {"id": 7}, "ok": False},
    {"level": "warn", "latency": None, "tags": []},
]
NOT_JSON = "level=error latency=250 (not JSON)"

APACHE = [
    '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 404 2326',
    '10.0.0.2 - - [10/Oct/2000:13:55:37 -0700] "GET /index.html HTTP/1.1" 200 15000',
    '10.0.0.3 - bob [10/Oct/2000:13:55:38 -0700] "POST /admin HTTP/1.1" 403 99',
    "a line with five fields",
]


def ingest(client: httpx.Client, group: str, items: list[Any]) -> None:
    """Ingest NDJSON: strings become ``{"message": ...}``, objects are sent as they are."""
    lines = []
    for i, item in enumerate(items):
        document = {"message": item} if isinstance(item, str) else item
        lines.append(orjson.dumps({**document, "timestamp": T0 + i}))
    response = client.post(
        "/api/v1/logs/events",
        params={"group": group, "stream": "s"},
        content=b"\n".join(lines) + b"\n",
        headers=NDJSON,
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(items)


def filtered(client: httpx.Client, group: str, pattern: str, **params: Any) -> httpx.Response:
    return client.get(
        "/api/v1/logs/events", params={"group": group, "filter_pattern": pattern, **params}
    )


def messages(client: httpx.Client, group: str, pattern: str) -> list[str]:
    response = filtered(client, group, pattern)
    assert response.status_code == 200, response.text
    return [e["message"] for e in response.json()["events"]]


def json_message(index: int) -> str:
    # Objects without "message" are stored as the line sent, "timestamp" included.
    return orjson.dumps({**JSON_EVENTS[index], "timestamp": T0 + index}).decode()


TEXT_CASES = [
    ("empty-matches-all", "", [0, 1, 2, 3, 4, 5]),
    ("term", "ERROR", [0, 1, 4]),
    ("terms-are-case-sensitive", "error", [5]),
    ("all-terms-required", "ERROR order", [0]),
    ("term-matches-inside-words", "xit", [3, 4]),
    ("quoted-phrase", '"Failed to process"', [0]),
    ("quoted-punctuation", '"ERROR:"', [1]),
    ("exclusion", "ERROR -Exiting", [0, 1]),
    ("quoted-exclusion", 'order -"order 17"', []),
    ("optional-terms", "?WARN ?INFO", [2, 3]),
    ("optional-and-required", "Exiting ?ERROR ?WARN", [4]),
    ("no-match", "CRITICAL", []),
]


@pytest.mark.parametrize(
    ("pattern", "expected"), [c[1:] for c in TEXT_CASES], ids=[c[0] for c in TEXT_CASES]
)
def test_text_patterns(client: httpx.Client, pattern: str, expected: list[int]) -> None:
    ingest(client, "text", TEXT_EVENTS)
    assert messages(client, "text", pattern) == [TEXT_EVENTS[i] for i in expected]


JSON_CASES = [
    ("string-equal", '{ $.level = "error" }', [0]),
    ("bare-word-equal", "{ $.level = error }", [0]),
    ("prefix-wildcard", "{ $.level = err* }", [0, 2]),
    ("number-compare", "{ $.latency > 200 }", [0, 1]),
    ("number-in-a-string-compares", "{ $.latency < 100 }", [2]),
    ("not-equal-holds-for-other-scalars", "{ $.latency != 250 }", [1, 2, 3]),
    ("nested-and", "{ $.user.id = 7 && $.level = err* }", [0, 2]),
    ("or-with-parentheses", '{ ($.level = "info" || $.latency >= 250) && $.user.id = 8 }', [1]),
    ("array-index", '{ $.tags[1] = "b" }', [0]),
    ("is-true", "{ $.ok IS TRUE }", [1]),
    ("is-false", "{ $.ok IS FALSE }", [2]),
    ("is-null", "{ $.latency IS NULL }", [3]),
    ("not-exists", "{ $.user NOT EXISTS }", [3]),
    ("any-scalar", "{ $.user.name = * }", [0, 1]),
    ("object-is-not-a-scalar", "{ $.user = * }", []),
]


@pytest.mark.parametrize(
    ("pattern", "expected"), [c[1:] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES]
)
def test_json_patterns_on_json_events(
    client: httpx.Client, pattern: str, expected: list[int]
) -> None:
    ingest(client, "json", [*JSON_EVENTS, NOT_JSON])
    assert messages(client, "json", pattern) == [json_message(i) for i in expected]


def test_json_pattern_reads_the_message_field_not_the_envelope(client: httpx.Client) -> None:
    # An object with "message" stores that text as @message; the pattern runs on it alone.
    ingest(client, "env", [{"message": '{"level": "error"}', "level": "info"}])
    assert messages(client, "env", '{ $.level = "error" }') == ['{"level": "error"}']
    assert messages(client, "env", '{ $.level = "info" }') == []


SPACE_CASES = [
    ("all-fields-named", "[ip, id, user, timestamp, request, status, bytes]", [0, 1, 2]),
    ("status-prefix", "[ip, id, user, timestamp, request, status = 4*, bytes]", [0, 2]),
    (
        "and-in-one-field",
        "[ip, id, user, timestamp, request, status = 4* && status != 403, bytes]",
        [0],
    ),
    ("number-compare", "[ip, id, user, timestamp, request, status, bytes > 1000]", [0, 1]),
    ("ellipsis-head", "[..., status = 200, bytes]", [1]),
    ("ellipsis-middle", "[ip = 10.*, ..., bytes < 100]", [2]),
    (
        "quoted-field-without-quotes",
        '[ip, id, user, timestamp, request = "POST *", status, bytes]',
        [2],
    ),
    ("bracketed-field", "[ip, id, user, timestamp = *13:55:36*, ...]", [0]),
    ("field-count-must-fit", "[a, b, c, d, e]", [3]),
    ("or-in-one-field", "[..., status = 200 || status = 403, bytes]", [1, 2]),
]


@pytest.mark.parametrize(
    ("pattern", "expected"), [c[1:] for c in SPACE_CASES], ids=[c[0] for c in SPACE_CASES]
)
def test_space_delimited_patterns(client: httpx.Client, pattern: str, expected: list[int]) -> None:
    ingest(client, "access", APACHE)
    assert messages(client, "access", pattern) == [APACHE[i] for i in expected]


def pages(
    client: httpx.Client, group: str, pattern: str, *, order: str, limit: int
) -> list[list[int]]:
    """Every page of a filtered read, as the ``i`` of each event."""
    result, token = [], None
    while True:
        params: dict[str, Any] = {"order": order, "limit": limit}
        if token:
            params["next_token"] = token
        response = filtered(client, group, pattern, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        result.append([orjson.loads(e["message"])["i"] for e in body["events"]])
        token = body["next_token"]
        if not token:
            return result


def test_pagination_with_a_pattern_across_segments_and_memtable(
    client: httpx.Client, server: RunningServer
) -> None:
    def event(i: int) -> dict[str, Any]:
        return {"i": i, "level": "error" if i % 3 == 0 else "info", "timestamp": T0 + i}

    def send(numbers: range) -> None:
        body = b"".join(orjson.dumps(event(i)) + b"\n" for i in numbers)
        response = client.post(
            "/api/v1/logs/events", params={"group": "many"}, content=body, headers=NDJSON
        )
        assert response.status_code == 200, response.text

    send(range(0, 300, 2))  # even numbers, flushed to Parquet
    server.store.flush(force=True)
    send(range(1, 300, 2))  # odd numbers, still in the memtable
    errors = [i for i in range(300) if i % 3 == 0]
    for order, expected in (("asc", errors), ("desc", errors[::-1])):
        got = pages(client, "many", '{ $.level = "error" }', order=order, limit=7)
        assert [i for page in got for i in page] == expected
        # The limit counts matching events: every page but the last is full.
        assert all(len(page) == 7 for page in got[:-1])
        assert 1 <= len(got[-1]) <= 7


def test_a_token_is_bound_to_its_pattern(client: httpx.Client) -> None:
    ingest(client, "text", TEXT_EVENTS * 3)
    first = filtered(client, "text", "ERROR", limit=2).json()
    token = first["next_token"]
    assert token
    same = filtered(client, "text", "ERROR", limit=2, next_token=token)
    assert same.status_code == 200, same.text
    assert len(same.json()["events"]) == 2
    for other in ("ERROR order", "", "ERROR "):
        response = filtered(client, "text", other, next_token=token)
        assert response.status_code == 400, other
        error = response.json()["error"]
        assert error["code"] == "InvalidParameterException"
        assert "filter_pattern" in error["message"]
    unfiltered = client.get("/api/v1/logs/events", params={"group": "text", "limit": 2}).json()
    response = filtered(client, "text", "ERROR", next_token=unfiltered["next_token"])
    assert response.status_code == 400


ERROR_CASES = [
    ("missing-value", "{ $.a = }", 9, "expected"),
    ("unterminated-quote", '"Failed to', 1, "unterminated quoted string"),
    ("unquoted-punctuation", "ERROR:", 6, "must be quoted"),
    ("two-ellipses", "[a, ..., b, ...]", 13, "one ... only"),
    ("operator-needs-a-number", "{ $.latency > abc }", 15, "needs a number"),
    ("ends-too-early", "{ $.a = 1", 10, "ends too early"),
    ("selector-without-dollar", "{ a = 1 }", 3, "selector"),
    ("field-used-twice", "[a, b, a]", 8, "used twice"),
    ("regex-unsupported", "%ERROR%", 1, "not supported"),
    ("too-long", "x" * 1025, 1025, "limit is 1024"),
]


@pytest.mark.parametrize(
    ("pattern", "column", "fragment"),
    [c[1:] for c in ERROR_CASES],
    ids=[c[0] for c in ERROR_CASES],
)
def test_malformed_pattern_is_400_with_the_column(
    client: httpx.Client, pattern: str, column: int, fragment: str
) -> None:
    ingest(client, "text", TEXT_EVENTS[:1])
    response = filtered(client, "text", pattern)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "InvalidParameterException"
    assert error["details"]["column"] == column
    assert f"column {column}" in error["message"]
    assert fragment in error["message"]


def test_the_pattern_is_checked_before_the_token(client: httpx.Client) -> None:
    ingest(client, "text", TEXT_EVENTS)
    response = filtered(client, "text", "{ $.a = }", next_token="garbage")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["column"] == 9
