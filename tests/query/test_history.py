"""DescribeQueries outlives a restart: the history in the catalog, bounded by count and age."""

from __future__ import annotations

from query.service import QueryService, QueryStatus
from store import query_history
from store.engine import Store
from store.query_history import HistoryEntry, QueryHistory
from tests.query.conftest import T0

NOW_S = T0 / 1000 + 60


def _journal(store: Store, **kwargs: int) -> QueryHistory:
    with store.cursor() as conn:
        query_history.ensure_schema(conn)
        conn.execute("DELETE FROM query_history")
    return QueryHistory(store.cursor, account_id="000000000000", **kwargs)


def test_recent_queries_survive_a_restart(store: Store) -> None:
    journal = _journal(store)
    first = QueryService(store, journal=journal, clock=lambda: NOW_S)
    query_id = first.start("stats count(*)", ["app"], T0 - 10**6, T0 + 10**7)
    assert first.wait(query_id, 30).status is QueryStatus.COMPLETE
    first.close()
    # A query the previous process accepted but never finished is lost: Unknown.
    journal.record(HistoryEntry("lost", "fields @message", ("web",), "Scheduled", T0 + 1))

    second = QueryService(store, journal=journal, clock=lambda: NOW_S)
    try:
        described = second.describe()
        assert [(d["queryId"], d["status"]) for d in described] == [
            (query_id, "Complete"),
            ("lost", "Unknown"),
        ]
        assert described[0]["queryString"] == "stats count(*)"
        assert described[0]["logGroupName"] == "app"
        assert [d["queryId"] for d in second.describe(group="web")] == ["lost"]
        assert [d["queryId"] for d in second.describe(status=QueryStatus.COMPLETE)] == [query_id]
    finally:
        second.close()


def test_history_is_bounded_by_count_and_age(store: Store) -> None:
    journal = _journal(store, keep=3, max_age_ms=10_000, prune_every=1)
    for index in range(6):
        journal.record(HistoryEntry(f"q{index}", "stats count(*)", ("app",), "Complete", index))
    assert [e.query_id for e in journal.recent(5)] == ["q5", "q4", "q3"]
    assert [e.query_id for e in journal.recent(10_004)] == ["q5", "q4"]
