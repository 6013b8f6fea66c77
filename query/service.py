"""Asynchronous queries: StartQuery, GetQueryResults, StopQuery, DescribeQueries (spec §13).

Queries run in worker threads, never on the event loop. Each one goes ``Scheduled`` ->
``Running`` -> ``Complete`` | ``Failed`` | ``Cancelled`` | ``Timeout`` (§13.3). Stopping or timing
out a running query interrupts its DuckDB cursor when the store lets us see it (the
``on_cursor`` hook of ``Store.query_logs``); otherwise the query stops at its next step and its
result is dropped. Everything detectable before reading data is refused by ``start`` itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import duckdb

from core.errors import BadRequest, NotFound, WatchkeepError
from query.check import MAX_LIMIT
from query.compile import CompileOptions
from query.errors import MalformedQuery
from query.parse import MAX_QUERY_CHARS
from query.records import QueryRecord, QueryStatus, describe_past, past_status
from query.run import (
    DEFAULT_ACCOUNT_ID,
    Cancelled,
    LogStore,
    QueryResult,
    check_regexes,
    run_query,
    validate_query,
)
from store.query_history import HistoryEntry

__all__ = ["QueryLimitExceeded", "QueryRecord", "QueryService", "QueryStatus"]

log = logging.getLogger(__name__)

MAX_GROUPS = 50


class QueryLimitExceeded(WatchkeepError):
    """Raised when StartQuery would exceed the number of queries allowed to run at once."""

    status = 429
    code = "LimitExceededException"


class GroupStore(LogStore, Protocol):
    def has_group(self, name: str) -> bool: ...


class Journal(Protocol):
    """Where recent queries outlive the process (``store.query_history.QueryHistory``)."""

    def recent(self, now_ms: int) -> list[HistoryEntry]: ...
    def record(self, entry: HistoryEntry) -> None: ...
    def finish(self, query_id: str, status: str) -> None: ...


class QueryService:
    """Runs queries over a store in worker threads and remembers recent ones."""

    def __init__(
        self,
        store: GroupStore,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        timeout_s: float = 3600.0,
        max_running: int = 100,
        workers: int = 4,
        history: int = 1000,
        clock: Callable[[], float] = time.time,
        journal: Journal | None = None,
    ) -> None:
        self._store = store
        self._account_id = account_id
        self._timeout_s = timeout_s
        self._max_running = max_running
        self._history = history
        self._clock = clock
        self._lock = threading.Lock()
        self._records: OrderedDict[str, QueryRecord] = OrderedDict()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wk-query")
        self._journal = journal
        # Queries of earlier runs of the process, for DescribeQueries only (no rows survive).
        self._past: list[HistoryEntry] = (
            journal.recent(int(clock() * 1000)) if journal is not None else []
        )

    # ---- StartQuery

    def start(
        self,
        query_string: str,
        groups: list[str],
        start_ms: int,
        end_ms: int,
        *,
        limit: int | None = None,
    ) -> str:
        """Validate and schedule a query; return its id. Blocks briefly: call from a thread.

        ``end_ms`` is inclusive (spec §12.1). Raises MalformedQuery, BadRequest, NotFound or
        QueryLimitExceeded before anything is scheduled.
        """
        self._validate_request(query_string, groups, start_ms, end_ms, limit)
        now_ms = int(self._clock() * 1000)
        options = CompileOptions(account_id=self._account_id, limit=limit, now_ms=now_ms)
        _, compiled = validate_query(query_string, options)
        check_regexes(self._store, list(groups), compiled.regexes)
        record = QueryRecord(
            query_id=str(uuid.uuid4()),
            query_string=query_string,
            groups=tuple(groups),
            start_ms=start_ms,
            end_ms=end_ms,
            limit=limit,
            create_ms=now_ms,
        )
        with self._lock:
            running = sum(1 for r in self._records.values() if not r.status.finished)
            if running >= self._max_running:
                raise QueryLimitExceeded(
                    f"{running} queries are already scheduled or running; the limit is "
                    f"{self._max_running}. Wait for one to finish or stop one.",
                    details={"limit": self._max_running},
                )
            self._records[record.query_id] = record
            self._forget_old()
        if self._journal is not None:
            entry = HistoryEntry(
                record.query_id, query_string, record.groups, record.status.value, now_ms
            )
            self._journal.record(entry)
        self._executor.submit(self._run, record)
        return record.query_id

    def _validate_request(
        self, query_string: str, groups: list[str], start_ms: int, end_ms: int, limit: int | None
    ) -> None:
        if not groups:
            raise BadRequest("Name at least one log group to query.")
        if len(groups) > MAX_GROUPS:
            raise BadRequest(
                f"A query may name at most {MAX_GROUPS} log groups, not {len(groups)}.",
                details={"groups": len(groups)},
            )
        if len(query_string) > MAX_QUERY_CHARS:
            raise BadRequest(
                f"The query is {len(query_string)} characters long; the limit is {MAX_QUERY_CHARS}."
            )
        if start_ms > end_ms:
            raise BadRequest(
                "The start of the time range is after its end.",
                details={"start_ms": start_ms, "end_ms": end_ms},
            )
        if limit is not None and not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}, not {limit}.")
        for group in groups:
            if not self._store.has_group(group):
                raise NotFound(f"log group {group!r} does not exist", details={"group": group})

    def _forget_old(self) -> None:
        while len(self._records) > self._history:
            oldest = next(iter(self._records.values()))
            if not oldest.status.finished:
                break
            self._records.popitem(last=False)

    # ---- the worker

    def _run(self, record: QueryRecord) -> None:
        with self._lock:
            if record.status is not QueryStatus.SCHEDULED:
                _settle(record)
                return
            record.status = QueryStatus.RUNNING
        timer = threading.Timer(self._timeout_s, self._expire, args=(record,))
        timer.daemon = True
        timer.start()
        try:
            result = run_query(
                self._store,
                record.query_string,
                record.groups,
                record.start_ms,
                record.end_ms,
                limit=record.limit,
                account_id=self._account_id,
                now_ms=record.create_ms,
                cancel=record.cancel,
                on_cursor=lambda cursor: self._attach(record, cursor),
                on_rows=lambda partial: self._partial(record, partial),
            )
        except (Cancelled, duckdb.InterruptException):
            self._finish(record, QueryStatus.CANCELLED)
        except MalformedQuery as exc:
            self._finish(record, QueryStatus.FAILED, error=exc.message)
        except Exception as exc:
            log.exception("query %s failed", record.query_id)
            self._finish(record, QueryStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        else:
            self._finish(record, QueryStatus.COMPLETE, result=result)
        finally:
            timer.cancel()
            record.cursors = []
            _settle(record)

    def _partial(self, record: QueryRecord, partial: QueryResult) -> None:
        """The rows are final but recordsMatched is still being counted: show them while
        Running (spec §13.1, §13.3)."""
        with self._lock:
            if record.status is QueryStatus.RUNNING:
                record.result = partial

    def _attach(self, record: QueryRecord, cursor: duckdb.DuckDBPyConnection) -> None:
        with self._lock:
            record.cursors = [*record.cursors, cursor]
        if record.cancel.is_set():
            cursor.interrupt()

    def _finish(
        self,
        record: QueryRecord,
        status: QueryStatus,
        *,
        result: QueryResult | None = None,
        error: str | None = None,
    ) -> None:
        with self._lock:
            if record.status is not QueryStatus.RUNNING:
                return  # stopped or timed out meanwhile: that status stands
            record.status = status
            record.result = result
            record.error = error
        self._journal_status(record)

    def _journal_status(self, record: QueryRecord) -> None:
        if self._journal is not None:
            self._journal.finish(record.query_id, record.status.value)

    def _expire(self, record: QueryRecord) -> None:
        self._interrupt(record, QueryStatus.TIMEOUT)

    def _interrupt(self, record: QueryRecord, status: QueryStatus) -> bool:
        with self._lock:
            if record.status.finished:
                return False
            scheduled = record.status is QueryStatus.SCHEDULED
            record.status = status
            record.result = None  # rows shown while Running go with it
            if status is QueryStatus.TIMEOUT:
                record.error = f"the query ran longer than {self._timeout_s:g} s"
        self._journal_status(record)
        record.cancel.set()
        for cursor in record.cursors:
            cursor.interrupt()
        if scheduled:
            _settle(record)  # its worker, when it comes, returns at once
        return True

    # ---- GetQueryResults, StopQuery, DescribeQueries

    def get(self, query_id: str) -> QueryRecord:
        with self._lock:
            record = self._records.get(query_id)
        if record is None:
            raise NotFound(f"query {query_id!r} does not exist", details={"query_id": query_id})
        return record

    def wait(self, query_id: str, timeout_s: float | None = None) -> QueryRecord:
        """Block until the query finishes (or ``timeout_s`` passes); return its record."""
        record = self.get(query_id)
        try:
            record.done.result(timeout=timeout_s)
        except TimeoutError:
            pass
        return record

    async def wait_async(self, query_id: str, timeout_s: float | None = None) -> QueryRecord:
        """``wait`` for the event loop."""
        record = self.get(query_id)
        try:
            await asyncio.wait_for(asyncio.wrap_future(record.done), timeout_s)
        except TimeoutError:
            pass
        return record

    def stop(self, query_id: str) -> bool:
        """StopQuery: cancel a scheduled or running query; BadRequest if it already finished."""
        record = self.get(query_id)
        if not self._interrupt(record, QueryStatus.CANCELLED):
            raise BadRequest(
                f"query {query_id!r} already finished ({record.status.value}); nothing to stop",
                details={"query_id": query_id, "status": record.status.value},
            )
        return True

    def describe(
        self,
        *,
        group: str | None = None,
        status: QueryStatus | None = None,
        max_items: int = 1000,
    ) -> list[dict[str, Any]]:
        """DescribeQueries: recent queries, newest first, filtered by log group and status."""
        with self._lock:
            records = list(reversed(self._records.values()))
        out = [
            r.describe()
            for r in records
            if (group is None or group in r.groups) and (status is None or r.status is status)
        ]
        live = {r.query_id for r in records}
        for entry in self._past:
            past = past_status(entry.status)
            if entry.query_id in live or (group is not None and group not in entry.groups):
                continue
            if status is None or past is status:
                out.append(describe_past(entry, past))
        out.sort(key=lambda e: e["createTime"], reverse=True)
        return out[:max_items]

    def close(self) -> None:
        """Stop every unfinished query and the worker threads."""
        with self._lock:
            pending = [r for r in self._records.values() if not r.status.finished]
        for record in pending:
            self._interrupt(record, QueryStatus.CANCELLED)
        self._executor.shutdown(wait=True, cancel_futures=True)
        for record in pending:
            _settle(record)


def _settle(record: QueryRecord) -> None:
    if not record.done.done():
        record.done.set_result(None)
