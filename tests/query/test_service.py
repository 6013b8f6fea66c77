"""The query lifecycle (spec §13.3-§13.4) over a real store.

``GatedStore`` holds every query at a gate until the test opens it, so that "running" and
"scheduled" are states a test can look at, not races.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pyarrow as pa
import pytest

from core.errors import BadRequest, NotFound
from query.errors import MalformedQuery
from query.service import QueryLimitExceeded, QueryService, QueryStatus
from store.engine import Store
from tests.query.conftest import T0

START, END = T0 - 3_600_000, T0 + 3_600_000


class GatedStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.gate = threading.Event()

    def has_group(self, name: str) -> bool:
        return self.store.has_group(name)

    def query_logs(
        self,
        groups: list[str],
        start_ms: int,
        end_ms: int,
        sql: str,
        params: list[Any],
        *,
        on_cursor: Any = None,
    ) -> pa.Table:
        assert self.gate.wait(10), "the test never opened the gate"
        return self.store.query_logs(groups, start_ms, end_ms, sql, params, on_cursor=on_cursor)


def wait_for(predicate: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


@pytest.fixture
def service(store: Store) -> Any:
    running = QueryService(store)
    yield running
    running.close()


def test_query_completes_with_rows_and_statistics(service: QueryService) -> None:
    query_id = service.start(
        "stats count(*) as c by level | sort c desc | limit 1", ["app"], START, END
    )
    record = service.wait(query_id, timeout_s=10)
    body = record.results()
    assert body["status"] == "Complete"
    assert body["results"] == [[{"field": "level", "value": "INFO"}, {"field": "c", "value": "3"}]]
    assert body["statistics"]["recordsScanned"] == 8.0
    assert body["queryLanguage"] == "CWLI"


def test_wait_async(service: QueryService) -> None:
    query_id = service.start("fields @message | limit 1", ["web"], START, END)
    record = asyncio.run(service.wait_async(query_id, timeout_s=10))
    assert record.status is QueryStatus.COMPLETE
    assert len(record.results()["results"]) == 1


def test_describe_filters_by_group_and_status(service: QueryService) -> None:
    first = service.start("limit 1", ["app"], START, END)
    second = service.start("limit 1", ["web"], START, END)
    service.wait(first, 10)
    service.wait(second, 10)
    assert [q["queryId"] for q in service.describe()] == [second, first]
    assert [q["queryId"] for q in service.describe(group="app")] == [first]
    assert service.describe(status=QueryStatus.RUNNING) == []
    entry = service.describe(group="web")[0]
    assert entry["queryString"] == "limit 1" and entry["status"] == "Complete"
    assert entry["logGroupName"] == "web"


@pytest.mark.parametrize(
    ("query", "groups", "start", "end", "limit", "error"),
    [
        ("limt 1", ["app"], START, END, None, MalformedQuery),
        ("filter @message like /[/", ["app"], START, END, None, MalformedQuery),
        ("limit 1", ["nope"], START, END, None, NotFound),
        ("limit 1", [], START, END, None, BadRequest),
        ("limit 1", ["app"] * 51, START, END, None, BadRequest),
        ("limit 1", ["app"], END, START, None, BadRequest),
        ("limit 1", ["app"], START, END, 10_001, BadRequest),
        ("fields " + "x" * 10_000, ["app"], START, END, None, BadRequest),
    ],
    ids=[
        "malformed",
        "bad-regex",
        "unknown-group",
        "no-group",
        "too-many-groups",
        "reversed-range",
        "limit-too-big",
        "query-too-long",
    ],
)
def test_start_refuses_bad_requests(
    service: QueryService,
    query: str,
    groups: list[str],
    start: int,
    end: int,
    limit: int | None,
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        service.start(query, groups, start, end, limit=limit)
    assert service.describe() == []


def test_unknown_and_finished_queries(service: QueryService) -> None:
    with pytest.raises(NotFound):
        service.get("no-such-id")
    query_id = service.start("limit 1", ["app"], START, END)
    service.wait(query_id, 10)
    with pytest.raises(BadRequest, match="already finished"):
        service.stop(query_id)


def test_stop_a_running_query(store: Store) -> None:
    gated = GatedStore(store)
    service = QueryService(gated)
    try:
        query_id = service.start("limit 1", ["app"], START, END)
        wait_for(lambda: service.get(query_id).status is QueryStatus.RUNNING)
        assert service.stop(query_id) is True
        gated.gate.set()
        record = service.wait(query_id, 10)
        assert record.status is QueryStatus.CANCELLED
        assert record.results()["results"] == []
    finally:
        gated.gate.set()
        service.close()


def test_stop_a_scheduled_query(store: Store) -> None:
    gated = GatedStore(store)
    service = QueryService(gated, workers=1)
    try:
        busy = service.start("limit 1", ["app"], START, END)
        waiting = service.start("limit 1", ["app"], START, END)
        wait_for(lambda: service.get(busy).status is QueryStatus.RUNNING)
        assert service.get(waiting).status is QueryStatus.SCHEDULED
        service.stop(waiting)
        assert service.wait(waiting, 1).status is QueryStatus.CANCELLED
        gated.gate.set()
        assert service.wait(busy, 10).status is QueryStatus.COMPLETE
    finally:
        gated.gate.set()
        service.close()


def test_timeout(store: Store) -> None:
    gated = GatedStore(store)
    service = QueryService(gated, timeout_s=0.1)
    try:
        query_id = service.start("limit 1", ["app"], START, END)
        wait_for(lambda: service.get(query_id).status is QueryStatus.TIMEOUT)
        gated.gate.set()
        record = service.wait(query_id, 10)
        assert record.status is QueryStatus.TIMEOUT
        assert "longer than 0.1 s" in (record.error or "")
    finally:
        gated.gate.set()
        service.close()


def test_too_many_running_queries(store: Store) -> None:
    gated = GatedStore(store)
    service = QueryService(gated, max_running=1)
    try:
        service.start("limit 1", ["app"], START, END)
        with pytest.raises(QueryLimitExceeded) as caught:
            service.start("limit 1", ["app"], START, END)
        assert caught.value.code == "LimitExceededException"
    finally:
        gated.gate.set()
        service.close()


def test_results_are_paged(service: QueryService) -> None:
    query_id = service.start("fields @timestamp", ["app"], START, END)
    record = service.wait(query_id, 10)
    first = record.results(max_items=5)
    assert len(first["results"]) == 5 and first["nextToken"] == "5"
    second = record.results(max_items=5, next_token=first["nextToken"])
    assert len(second["results"]) == 3 and "nextToken" not in second
    with pytest.raises(BadRequest):
        record.results(next_token="x")
