"""The log store's read path: queries over a snapshot of segments and memtable, and metadata.

``query_logs`` takes a snapshot of the segment list and the memtable under the view lock and
runs SQL over both. ``StoreReads`` is a base of ``store.engine.Store``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa

from store import catalog
from store.log_state import StoreState
from store.scan import build_relation, relation_schema
from store.schema import empty_log_table

__all__ = ["StoreReads"]


class StoreReads(StoreState):
    """``query_logs``, ``logs_schema``, ``scan_totals``, ``high_water_seq``."""

    def query_logs(
        self,
        groups: list[str],
        start_ms: int,
        end_ms: int,
        sql: str,
        params: list[Any],
        *,
        on_cursor: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
        newest_first: bool = True,
        after_seq: dict[str, int] | None = None,
    ) -> pa.Table:
        """Run ``sql``, which reads the relation ``logs``, over the groups' events in range.

        The relation already holds only events with ``start_ms <= ts_ms < end_ms``.
        ``on_cursor`` receives the DuckDB cursor before the query runs, so that a caller in
        another thread can ``interrupt()`` it (StopQuery, time-outs). DuckDB reads files in
        the order given, so a top-N ``ORDER BY ts_ms DESC LIMIT n`` stops early only when the
        newest segments come first: ``newest_first`` (the default, as in Logs Insights) lists
        them so; oldest-first readers (FilterLogEvents ascending) pass False.

        ``after_seq`` (group name -> sequence number) is a hint for SQL that reads only events
        after a cursor (``seq > n``, which stays the exact filter): memtable batches and
        segments of a group that hold nothing after its number are left out before DuckDB
        sees them, so a poll costs what is new rather than what is unflushed or stored. The
        relation's field columns are then those of the parts kept: use it with SQL on the
        fixed columns (``log_group``, ``seq``, ``message``...).
        """
        self._check_ready()
        segments, mem = self._snapshot(
            groups, start_ms, end_ms, newest_first=newest_first, after_seq=after_seq
        )
        relation = build_relation(
            self.config.data_dir,
            segments,
            mem,
            empty=empty_log_table(),
            memtables_first=newest_first,
            start_ms=start_ms,
            end_ms=end_ms,
        )
        # NOT MATERIALIZED: a query may read ``logs`` twice (its rows and its statistics);
        # DuckDB would otherwise copy the whole relation once before reading it.
        text = f"WITH logs AS NOT MATERIALIZED ({relation.sql}) {sql}"
        cursor = self._conn().cursor()
        try:
            if on_cursor is not None:
                on_cursor(cursor)
            for name, table in relation.tables.items():
                cursor.register(name, table)
            params = [*relation.params, *params]
            return cursor.sql(text, params=params).to_arrow_table()
        finally:
            cursor.close()

    def logs_schema(self, groups: list[str], start_ms: int, end_ms: int) -> dict[str, str]:
        """The columns ``query_logs`` shows for this scope (name -> Arrow type), from the
        catalog's segment metadata and the memtable: no query, no Parquet footer read."""
        self._check_ready()
        segments, mem = self._snapshot(groups, start_ms, end_ms, newest_first=True)
        return relation_schema(segments, mem, empty=empty_log_table())

    def scan_totals(self, groups: list[str], start_ms: int, end_ms: int) -> tuple[int, int]:
        """Events in range (``start_ms <= ts_ms < end_ms``) and their message bytes: what a
        query scans (spec §13.2), mostly from memory (``store.totals``)."""
        self._check_ready()
        segments, mem = self._snapshot(groups, start_ms, end_ms, newest_first=True)
        with self._conn().cursor() as cursor:
            counted = self._totals.totals(
                cursor, self.config.data_dir, segments, mem, start_ms, end_ms
            )
        self._totals.prune(lambda: {s.path for s in self._lake_().all_segments()})
        return counted

    def _snapshot(
        self,
        groups: list[str],
        start_ms: int,
        end_ms: int,
        *,
        newest_first: bool,
        after_seq: dict[str, int] | None = None,
    ) -> tuple[list[catalog.Segment], list[pa.Table]]:
        """The segments that may hold events in range, and the memtable tables, of groups;
        with ``after_seq``, only those that may hold a group's events after its number."""
        states = [self._state(name) for name in groups]
        after = after_seq or {}
        lake = self._lake_()
        segments: list[catalog.Segment] = []
        mem: list[pa.Table] = []
        with self._view_lock:
            for st in states:
                cursor = after.get(st.row.name)
                selected = lake.select(st.row.id, start_ms, end_ms)
                segments += (
                    selected if cursor is None else [s for s in selected if s.max_seq > cursor]
                )
                batches = self._memtable.snapshot(st.row.id, after_seq=cursor)
                mem += [b.table for b in batches]
        segments.sort(key=lambda s: (s.max_ts, s.min_ts), reverse=newest_first)
        return segments, mem

    def high_water_seq(self, groups: list[str]) -> dict[str, int]:
        """Each group's last visible sequence number (0: no events), from metadata alone: the
        catalog's ``max_seq`` of its segments and the memtable's last batch; no data is read."""
        self._check_ready()
        states = [self._state(name) for name in groups]
        lake = self._lake_()
        out: dict[str, int] = {}
        # Under the view lock a flush is either wholly in the memtable or wholly published.
        with self._view_lock:
            for st in states:
                stored = max((s.max_seq for s in lake.segments(st.row.id)), default=0)
                out[st.row.name] = max(stored, self._memtable.last_seq(st.row.id) or 0)
        return out
