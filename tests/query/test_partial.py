"""recordsMatched counted apart from the rows (``run_query``'s ``on_rows``), shown while Running
(spec §13.1, §13.3), and ranges that cut segments (``store.scan``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pyarrow as pa
import pytest

from query.render import render_timestamp
from query.run import QueryResult, run_query
from query.service import QueryService, QueryStatus
from store.engine import Store
from tests.query.conftest import T0

END = T0 + 10**7


def test_rows_come_before_records_matched(store: Store) -> None:
    seen: list[QueryResult] = []
    query = "filter ispresent(user.id) | limit 2"
    result = run_query(store, query, ["app"], T0, END, on_rows=seen.append)
    assert len(seen) == 1 and seen[0].rows == result.rows and len(result.rows) == 2
    assert seen[0].statistics["recordsMatched"] == 2.0  # a lower bound, until the count
    assert result.statistics["recordsMatched"] == 5.0
    partial = {k: v for k, v in seen[0].statistics.items() if k != "recordsMatched"}
    assert partial == {k: v for k, v in result.statistics.items() if k != "recordsMatched"}


def test_capped_rows_come_first_too(store: Store) -> None:
    seen: list[QueryResult] = []
    result = run_query(
        store, "filter ispresent(user.id)", ["app"], T0, END, limit=2, on_rows=seen.append
    )
    assert [len(r.rows) for r in seen] == [2]
    assert result.statistics["recordsMatched"] == 5.0


@pytest.mark.parametrize("query", ["filter ispresent(user.id)", "stats count(*)", "limit 3"])
def test_no_count_apart_no_partial_rows(store: Store, query: str) -> None:
    seen: list[QueryResult] = []
    run_query(store, query, ["app"], T0, END, on_rows=seen.append)
    assert seen == []


def test_a_range_that_cuts_segments(store: Store) -> None:
    stamps = sorted(
        row[0]["value"] for row in run_query(store, "fields @timestamp", ["app"], T0, END).rows
    )
    for start in range(T0, T0 + 400_000, 7_000):
        for end in (start + 1_000, start + 61_000, END):
            expected = sum(render_timestamp(start) <= s <= render_timestamp(end) for s in stamps)
            result = run_query(store, "stats count(*) as n", ["app"], start, end)
            assert result.rows == [[{"field": "n", "value": str(expected)}]], (start, end)
            assert result.statistics["recordsScanned"] == expected


class CountGate:
    """A store whose recordsMatched statements wait at a gate."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.gate = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def query_logs(self, *args: Any, **kwargs: Any) -> pa.Table:
        if "records_matched" in args[3]:
            assert self.gate.wait(10), "the test never opened the gate"
        return self.store.query_logs(*args, **kwargs)


def test_running_shows_the_rows_then_complete_the_count(store: Store) -> None:
    gated = CountGate(store)
    service = QueryService(gated)  # type: ignore[arg-type]
    try:
        query_id = service.start("filter ispresent(user.id) | limit 2", ["app"], T0, END)
        record = service.get(query_id)
        deadline = time.monotonic() + 10
        while not record.results()["results"] and time.monotonic() < deadline:
            time.sleep(0.01)
        running = record.results()
        assert running["status"] == "Running" and len(running["results"]) == 2
        assert running["statistics"]["recordsMatched"] == 2.0
        gated.gate.set()
        done = service.wait(query_id, timeout_s=10).results()
        assert done["status"] == "Complete" and done["results"] == running["results"]
        assert done["statistics"]["recordsMatched"] == 5.0
        assert service.get(query_id).status is QueryStatus.COMPLETE
    finally:
        gated.gate.set()
        service.close()
