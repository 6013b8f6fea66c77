"""A query's record for StartQuery/GetQueryResults/DescribeQueries (spec §13): its request,
status and result, and how it is shown. No I/O here.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import duckdb

from core.errors import BadRequest
from query.run import QueryResult
from store.query_history import HistoryEntry

__all__ = ["QueryRecord", "QueryStatus", "describe_past", "past_status"]


class QueryStatus(StrEnum):
    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    COMPLETE = "Complete"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    TIMEOUT = "Timeout"
    UNKNOWN = "Unknown"

    @property
    def finished(self) -> bool:
        return self not in (QueryStatus.SCHEDULED, QueryStatus.RUNNING)


@dataclass(slots=True)
class QueryRecord:
    """One query's request, state and (once Complete) result."""

    query_id: str
    query_string: str
    groups: tuple[str, ...]
    start_ms: int
    end_ms: int
    limit: int | None
    create_ms: int
    status: QueryStatus = QueryStatus.SCHEDULED
    result: QueryResult | None = None
    error: str | None = None
    done: Future[None] = field(default_factory=Future)
    cancel: threading.Event = field(default_factory=threading.Event)
    # The DuckDB cursors of its statements (the rows and recordsMatched may run at once).
    cursors: list[duckdb.DuckDBPyConnection] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """The DescribeQueries entry."""
        return {
            "queryId": self.query_id,
            "queryString": self.query_string,
            "status": self.status.value,
            "createTime": self.create_ms,
            "logGroupName": self.groups[0] if self.groups else None,
        }

    def results(
        self, *, max_items: int | None = None, next_token: str | None = None
    ) -> dict[str, Any]:
        """The GetQueryResults body (spec §13.1): while Running, the rows once they are known,
        with statistics that are final but for recordsMatched, which only Complete gives.

        ``max_items`` pages the rows; the answer's ``nextToken`` asks for the next page.
        """
        result = self.result
        rows = result.rows if result is not None else []
        start = _page_start(next_token, len(rows))
        end = len(rows) if max_items is None else min(len(rows), start + max_items)
        body: dict[str, Any] = {
            "status": self.status.value,
            "results": rows[start:end],
            "statistics": result.statistics if result is not None else _empty_statistics(),
            "encryptionKey": None,
            "queryLanguage": "CWLI",
        }
        if end < len(rows):
            body["nextToken"] = str(end)
        if self.error is not None:
            body["error"] = self.error
        return body


def _page_start(token: str | None, total: int) -> int:
    if token is None:
        return 0
    if not token.isdigit() or int(token) > total:
        raise BadRequest(f"nextToken {token!r} is not one this query gave out")
    return int(token)


def _empty_statistics() -> dict[str, float]:
    keys = (
        "recordsMatched",
        "recordsScanned",
        "bytesScanned",
        "estimatedRecordsSkipped",
        "estimatedBytesSkipped",
        "logGroupsScanned",
    )
    return dict.fromkeys(keys, 0.0)


def past_status(text: str) -> QueryStatus:
    """A query of an earlier run that never finished there is lost: Unknown (spec §13.3)."""
    status = QueryStatus(text) if text in QueryStatus.__members__.values() else None
    return status if status is not None and status.finished else QueryStatus.UNKNOWN


def describe_past(entry: HistoryEntry, status: QueryStatus) -> dict[str, Any]:
    return {
        "queryId": entry.query_id,
        "queryString": entry.query_string,
        "status": status.value,
        "createTime": entry.create_ms,
        "logGroupName": entry.groups[0] if entry.groups else None,
    }
