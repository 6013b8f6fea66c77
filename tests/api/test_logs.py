"""The native logs API against a real server: ingest formats, partial success, reads, groups."""

from __future__ import annotations

import gzip

import httpx
import orjson
import pytest

NDJSON = {"Content-Type": "application/x-ndjson"}


def ingest(
    client: httpx.Client,
    body: bytes,
    *,
    group: str = "app",
    stream: str = "s1",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return client.post(
        "/api/v1/logs/events",
        params={"group": group, "stream": stream},
        content=body,
        headers=headers or NDJSON,
    )


def events(client: httpx.Client, group: str = "app", **params: object) -> list[dict]:
    response = client.get("/api/v1/logs/events", params={"group": group, **params})
    assert response.status_code == 200, response.text
    return response.json()["events"]


def test_ndjson_round_trip_keeps_messages_byte_exact(client: httpx.Client) -> None:
    lines = [b'{"level":"info","n":1, "timestamp": 1700000000000}', b'{"msg":"caf\xc3\xa9"}']
    response = ingest(client, b"\n".join(lines) + b"\n")
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 2, "rejected": []}
    got = events(client)
    assert [e["message"].encode() for e in got] == lines
    assert got[0]["timestamp"] == 1_700_000_000_000
    assert {e["log_stream"] for e in got} == {"s1"}


@pytest.mark.parametrize(
    ("content_type", "body", "messages"),
    [
        ("application/json", b'[{"message":"one"},{"a":1}]', ["one", '{"a":1}']),
        ("text/plain", b"first line\r\nsecond line\n\n", ["first line", "second line"]),
        ("application/json", b'{"message":"x"}\n{"message":"y"}', ["x", "y"]),
    ],
    ids=["json-array", "text-plain", "json-ndjson"],
)
def test_other_formats(
    client: httpx.Client, content_type: str, body: bytes, messages: list[str]
) -> None:
    response = ingest(client, body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert [e["message"] for e in events(client)] == messages


def test_gzip_body(client: httpx.Client) -> None:
    body = gzip.compress(b"".join(b'{"i":%d}\n' % i for i in range(500)))
    response = ingest(client, body, headers={**NDJSON, "Content-Encoding": "gzip"})
    assert response.json()["accepted"] == 500
    assert len(events(client, limit=10_000)) == 500


def test_bad_events_are_reported_and_good_ones_kept(client: httpx.Client) -> None:
    body = b'{"ok":1}\n{broken\n{"timestamp":"yesterday"}\n\xff\xfe\n{"ok":2}\n'
    response = ingest(client, body)
    assert response.status_code == 200
    result = response.json()
    assert result["accepted"] == 2
    assert [r["index"] for r in result["rejected"]] == [1, 2, 3]
    assert "JSON" in result["rejected"][0]["reason"]
    assert "timestamp" in result["rejected"][1]["reason"]
    assert "UTF-8" in result["rejected"][2]["reason"]
    assert [e["message"] for e in events(client)] == ['{"ok":1}', '{"ok":2}']


@pytest.mark.parametrize(
    ("params", "headers", "body", "status", "code"),
    [
        (
            {"group": "app"},
            {"Content-Type": "application/xml"},
            b"<a/>",
            415,
            "InvalidParameterException",
        ),
        ({"group": "app"}, NDJSON, b"{broken\n", 400, "InvalidParameterException"),
        ({"group": "app"}, NDJSON, b"\n\n", 400, "InvalidParameterException"),
        ({"group": "bad group!"}, NDJSON, b"{}", 400, "InvalidParameterException"),
        ({"group": "app", "stream": "a:b"}, NDJSON, b"{}", 400, "InvalidParameterException"),
        ({}, NDJSON, b"{}", 400, "InvalidParameterException"),
        (
            {"group": "app"},
            {**NDJSON, "Content-Encoding": "gzip"},
            b"not gzip",
            400,
            "InvalidParameterException",
        ),
        (
            {"group": "app"},
            {**NDJSON, "Content-Encoding": "br"},
            b"x",
            415,
            "InvalidParameterException",
        ),
        (
            {"group": "app"},
            {"Content-Type": "application/json"},
            b"[1,",
            400,
            "InvalidParameterException",
        ),
    ],
    ids=[
        "xml",
        "all-malformed",
        "empty",
        "bad-group",
        "bad-stream",
        "no-group",
        "bad-gzip",
        "brotli",
        "truncated-array",
    ],
)
def test_bad_requests_get_a_precise_error(
    client: httpx.Client, params: dict, headers: dict, body: bytes, status: int, code: str
) -> None:
    response = client.post("/api/v1/logs/events", params=params, content=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert len(error["message"]) > 10


def test_oversized_event_is_rejected_alone(tmp_path, settings) -> None:  # noqa: ANN001
    from tests.conftest import ADMIN_KEY, RunningServer, make_settings

    running = RunningServer(make_settings(tmp_path / "small", max_event_bytes=100)).start()
    try:
        with httpx.Client(
            base_url=running.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ) as c:
            big = orjson.dumps({"pad": "x" * 200})
            response = ingest(c, b'{"a":1}\n' + big + b"\n")
            assert response.json()["accepted"] == 1
            assert "limit" in response.json()["rejected"][0]["reason"]
    finally:
        running.stop()


def test_oversized_body_is_413(tmp_path) -> None:  # noqa: ANN001
    from tests.conftest import ADMIN_KEY, RunningServer, make_settings

    running = RunningServer(make_settings(tmp_path / "small", max_body_bytes=1000)).start()
    try:
        with httpx.Client(
            base_url=running.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ) as c:
            response = ingest(c, b'{"a":1}\n' * 200)
            assert response.status_code == 413
            bomb = gzip.compress(b'{"a":1}\n' * 10_000)
            assert len(bomb) < 1000
            response = ingest(c, bomb, headers={**NDJSON, "Content-Encoding": "gzip"})
            assert response.status_code == 413
            assert response.json()["error"]["code"] == "RequestEntityTooLargeException"
    finally:
        running.stop()


def test_idempotency_key_acknowledges_a_retry_without_storing_twice(client: httpx.Client) -> None:
    headers = {**NDJSON, "Idempotency-Key": "batch-1"}
    first = ingest(client, b'{"a":1}\n{"a":2}\n', headers=headers)
    again = ingest(client, b'{"a":1}\n{"a":2}\n', headers=headers)
    assert first.json()["accepted"] == again.json()["accepted"] == 2
    assert again.json()["duplicate"] is True
    assert len(events(client)) == 2


def test_filter_paginates_both_ways_without_gaps(client: httpx.Client) -> None:
    body = b"".join(b'{"i":%d,"timestamp":%d}\n' % (i, 1_700_000_000_000 + i) for i in range(25))
    ingest(client, body)
    for order, expected in (("asc", list(range(25))), ("desc", list(range(24, -1, -1)))):
        seen, token = [], None
        while True:
            params = {"group": "app", "limit": 7, "order": order}
            if token:
                params["next_token"] = token
            page = client.get("/api/v1/logs/events", params=params).json()
            seen += [orjson.loads(e["message"])["i"] for e in page["events"]]
            token = page["next_token"]
            if not token:
                break
        assert seen == expected


def test_filter_by_time_and_stream(client: httpx.Client) -> None:
    ingest(client, b'{"timestamp":1700000000000}\n', stream="a")
    ingest(client, b'{"timestamp":1700000100000}\n', stream="b")
    assert len(events(client, start=1_700_000_050)) == 1
    assert len(events(client, end="2023-11-14T22:14:00Z")) == 1
    assert [e["log_stream"] for e in events(client, stream="b")] == ["b"]


def test_reading_unknown_group_is_404(client: httpx.Client) -> None:
    response = client.get("/api/v1/logs/events", params={"group": "nope"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ResourceNotFoundException"


def test_bad_token_and_range_are_400(client: httpx.Client) -> None:
    ingest(client, b"{}\n")
    for params in ({"next_token": "garbage"}, {"start": "yesterday"}, {"start": 10, "end": 5}):
        response = client.get("/api/v1/logs/events", params={"group": "app", **params})
        assert response.status_code == 400, params
        assert response.json()["error"]["code"] == "InvalidParameterException"


def test_group_lifecycle(client: httpx.Client) -> None:
    created = client.put("/api/v1/logs/groups/team/api", json={"retention_days": 7})
    assert created.status_code == 201
    assert created.json()["retention_days"] == 7
    assert (
        client.put("/api/v1/logs/groups/team/api", json={"retention_days": 30}).status_code == 200
    )
    listed = client.get("/api/v1/logs/groups", params={"prefix": "team/"}).json()["log_groups"]
    assert [(g["name"], g["retention_days"]) for g in listed] == [("team/api", 30)]
    bad = client.put("/api/v1/logs/groups/team/api", json={"retention_days": 2})
    assert bad.status_code == 400 and "retention_days" in bad.json()["error"]["message"]
    assert client.delete("/api/v1/logs/groups/team/api").status_code == 200
    assert client.get("/api/v1/logs/groups/team/api").status_code == 404
    assert client.delete("/api/v1/logs/groups/team/api").status_code == 404


def test_retention_dry_run_lists_then_apply_drops(client: httpx.Client, server) -> None:  # noqa: ANN001
    client.put("/api/v1/logs/groups/old", json={"retention_days": 1})
    ingest(client, b'{"timestamp":1000000000000}\n{"k":"now"}\n', group="old")
    server.store.flush(force=True)
    dry = client.post("/api/v1/logs/retention", params={"dry_run": True}).json()
    assert dry == {"dry_run": True, "expired": [{"log_group": "old", "hour_ms": 999997200000}]}
    assert len(events(client, group="old")) == 2
    applied = client.post("/api/v1/logs/retention").json()
    assert applied["expired"] == dry["expired"]
    assert [e["message"] for e in events(client, group="old")] == ['{"k":"now"}']


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "MissingAuthenticationTokenException"),
        ("Basic dXNlcjpwYXNz", "UnrecognizedClientException"),
        ("Bearer WKIAAAAAAAAAAAAAAAAA:wks_" + "a" * 40, "UnrecognizedClientException"),
        ("Bearer nonsense", "UnrecognizedClientException"),
    ],
    ids=["missing", "basic", "unknown-key", "malformed"],
)
def test_requests_without_valid_credentials_are_401(
    anon: httpx.Client, authorization: str | None, code: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = anon.get("/api/v1/logs/groups", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert "wks_" not in response.text


def test_wrong_secret_is_401_invalid_signature(anon: httpx.Client) -> None:
    from tests.conftest import ADMIN_KEY

    key_id = ADMIN_KEY.split(":")[0]
    response = anon.get(
        "/api/v1/logs/groups", headers={"Authorization": f"Bearer {key_id}:wks_" + "b" * 40}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidSignatureException"


def test_unauthenticated_ingest_is_refused_before_the_body_is_read(anon: httpx.Client) -> None:
    response = anon.post("/api/v1/logs/events", params={"group": "g"}, content=b"x" * 10_000_000)
    assert response.status_code == 401


def test_healthz_needs_no_key(anon: httpx.Client) -> None:
    response = anon.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_unknown_route_has_the_error_shape(client: httpx.Client) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ResourceNotFoundException"
