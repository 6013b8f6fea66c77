"""FilterLogEvents in ingestion order (``order=ingest``): the cursor ``watchkeep tail -f``
follows. Every event comes exactly once, late and backfilled ones included, across pages,
flushes and time ranges."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import RunningServer

NDJSON = {"Content-Type": "application/x-ndjson"}
NOW_S = 1_700_000_000


def ingest(client: httpx.Client, items: list[dict[str, Any]], *, group: str = "app") -> None:
    body = b"".join(orjson.dumps(item) + b"\n" for item in items)
    response = client.post(
        "/api/v1/logs/events", params={"group": group, "stream": "s"}, content=body, headers=NDJSON
    )
    assert response.status_code == 200, response.text


def read(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/logs/events", params={"group": "app", **params})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def drain(client: httpx.Client, token: str | None, **params: Any) -> tuple[list[int], str]:
    """Every page from ``token`` on; the ``i`` of each event and the follow token at the end."""
    seen: list[int] = []
    while True:
        cursor = {"next_token": token} if token else {}
        body = read(client, order="ingest", limit=7, **params, **cursor)
        seen += [orjson.loads(e["message"])["i"] for e in body["events"]]
        assert body["follow_token"], body
        if not body["next_token"]:
            return seen, body["follow_token"]
        assert body["next_token"] == body["follow_token"]
        token = body["next_token"]


def stamped(first: int, count: int, ts_ms: int) -> list[dict[str, Any]]:
    return [{"i": i, "timestamp": ts_ms} for i in range(first, first + count)]


def test_ingest_order_follows_every_event_once_including_backfill(
    client: httpx.Client, server: RunningServer
) -> None:
    recent_ms = NOW_S * 1000
    ingest(client, stamped(0, 10, recent_ms))
    seen, token = drain(client, None)
    assert seen == list(range(10))

    # More than a page arrives between two polls, with timestamps in any order: a late one,
    # one from last year (backfill), and the same timestamp as events already shown.
    ingest(client, stamped(10, 9, recent_ms + 5))
    ingest(client, stamped(19, 1, recent_ms - 365 * 86_400_000))
    ingest(client, stamped(20, 5, recent_ms))
    seen, token = drain(client, token)
    assert seen == list(range(10, 25))

    # A flush moves everything to Parquet: the cursor does not care where events live.
    server.store.flush(force=True)
    seen, token = drain(client, token)
    assert seen == []
    ingest(client, stamped(25, 3, recent_ms - 1))
    seen, token = drain(client, token)
    assert seen == [25, 26, 27]
    assert read(client, order="ingest", next_token=token)["events"] == []


def test_follow_token_after_a_range_skips_what_the_range_left_out(client: httpx.Client) -> None:
    # ``tail --since`` lists a range, then follows without one: old events already stored
    # must not show up then, while old events ingested afterwards (backfill) must.
    old_ms, recent_ms = (NOW_S - 86_400) * 1000, NOW_S * 1000
    ingest(client, stamped(0, 20, old_ms) + stamped(20, 3, recent_ms) + stamped(23, 20, old_ms))
    seen, token = drain(client, None, start=NOW_S - 60)
    assert seen == [20, 21, 22]
    seen, token = drain(client, token)
    assert seen == []
    ingest(client, stamped(43, 1, old_ms))
    seen, _ = drain(client, token)
    assert seen == [43]


def test_follow_token_with_a_pattern_and_several_groups(client: httpx.Client) -> None:
    ingest(client, [{"i": 0, "level": "error"}, {"i": 1, "level": "info"}])
    ingest(client, [{"i": 100, "level": "error"}], group="api")
    params = {"group": ["app", "api"], "filter_pattern": '{ $.level = "error" }'}
    seen, token = drain(client, None, **params)
    assert sorted(seen) == [0, 100]
    ingest(client, [{"i": 2, "level": "error"}, {"i": 3, "level": "info"}])
    ingest(client, [{"i": 101, "level": "error"}], group="api")
    seen, token = drain(client, token, **params)
    assert sorted(seen) == [2, 101]
    # The token is bound to its pattern, like FilterLogEvents' time-ordered token.
    response = client.get(
        "/api/v1/logs/events", params={**params, "order": "ingest", "next_token": token}
    )
    assert response.status_code == 200
    other = client.get(
        "/api/v1/logs/events",
        params={"group": "app", "order": "ingest", "next_token": token, "filter_pattern": "x"},
    )
    assert other.status_code == 400
    assert "another filter_pattern" in other.json()["error"]["message"]


def creation_time(client: httpx.Client) -> int:
    response = client.get("/api/v1/logs/groups/app")
    assert response.status_code == 200, response.text
    return response.json()["creation_time"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("flushed", [False, True], ids=["memtable", "segments"])
def test_follow_token_reads_a_re_created_group_from_its_beginning(
    client: httpx.Client, server: RunningServer, flushed: bool
) -> None:
    recent_ms = NOW_S * 1000
    ingest(client, stamped(0, 10, recent_ms))
    seen, token = drain(client, None)
    assert seen == list(range(10))
    assert client.delete("/api/v1/logs/groups/app").status_code == 200
    # Re-created on first use, maybe within the same millisecond (the token names the group's
    # incarnation by its id); its sequence starts again at 1, behind the old cursor (10).
    ingest(client, stamped(100, 3, recent_ms))
    if flushed:
        server.store.flush(force=True)
    seen, token = drain(client, token)
    assert seen == [100, 101, 102]
    ingest(client, stamped(103, 1, recent_ms))
    seen, token = drain(client, token)
    assert seen == [103]
    # The same, for a follower that listed a range first (the high-water mark path).
    seen, token = drain(client, token, start=NOW_S - 60)
    assert seen == []


def test_a_cursor_issued_without_incarnations_still_follows(client: httpx.Client) -> None:
    # Tokens issued before the cursor named incarnations: ["ingest", [[group, seq]], digest].
    ingest(client, stamped(0, 5, NOW_S * 1000))
    legacy = base64.urlsafe_b64encode(orjson.dumps(["ingest", [["app", 3]], ""])).decode()
    seen, _ = drain(client, legacy.rstrip("="))
    assert seen == [3, 4]


def test_a_cursor_naming_a_creation_time_reads_its_group_again(client: httpx.Client) -> None:
    # Tokens issued while incarnations were creation times name no current id: the group is
    # read from its beginning (events may repeat once; none is skipped).
    ingest(client, stamped(0, 5, NOW_S * 1000))
    created = creation_time(client)
    legacy = base64.urlsafe_b64encode(orjson.dumps(["ingest", [["app", 3, created]], ""]))
    seen, _ = drain(client, legacy.decode().rstrip("="))
    assert seen == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"order": "newest"}, "order"),
        ({"order": "ingest", "next_token": "garbage"}, "not a token this server issued"),
        ({"order": "asc", "next_token": "INGEST"}, "order=ingest"),
        ({"order": "ingest", "next_token": "ASC"}, "order=asc or order=desc"),
    ],
    ids=["bad-order", "garbage-cursor", "cursor-with-asc", "asc-token-with-ingest"],
)
def test_bad_follow_parameters_are_400(
    client: httpx.Client, params: dict[str, Any], fragment: str
) -> None:
    ingest(client, stamped(0, 3, NOW_S * 1000))
    tokens = {
        "INGEST": read(client, order="ingest")["follow_token"],
        "ASC": read(client, order="asc", limit=1)["next_token"],
    }
    params = {k: tokens.get(v, v) for k, v in params.items()}
    response = client.get("/api/v1/logs/events", params={"group": "app", **params})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "InvalidParameterException"
    assert fragment in error["message"], error["message"]
