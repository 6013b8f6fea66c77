"""recordsScanned and bytesScanned (spec §13.2) without scanning what the store already knows.

A segment is immutable, so its event count and message bytes are read once and remembered by
path; a query whose range covers a segment whole takes them from memory. Segments cut by the
range are counted in SQL (only ``ts_ms`` and ``message_bytes``, one small statement), the
memtable with Arrow compute.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from store.catalog import Segment

__all__ = ["SegmentTotals"]

# Remembered segments beyond which paths that left the lake (compacted, expired) are dropped.
_PRUNE_AT = 4096


class SegmentTotals:
    """Per-segment (events, message bytes), filled on first use."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def totals(
        self,
        conn: duckdb.DuckDBPyConnection,
        data_dir: Path,
        segments: Sequence[Segment],
        memtables: Sequence[pa.Table],
        start_ms: int,
        end_ms: int,
    ) -> tuple[int, int]:
        """Events with ``start_ms <= ts_ms < end_ms``, and the sum of their message bytes."""
        records = size = 0
        unknown: list[Segment] = []
        for segment in segments:
            known = self._known.get(segment.path)
            if known is not None and segment.min_ts >= start_ms and segment.max_ts < end_ms:
                records += known[0]
                size += known[1]
            else:
                unknown.append(segment)
        if unknown:
            counted = _count(conn, data_dir, unknown, start_ms, end_ms)
            with self._lock:
                for segment, (whole, whole_bytes, inside, inside_bytes) in zip(
                    unknown, counted, strict=True
                ):
                    self._known[segment.path] = (whole, whole_bytes)
                    records += inside
                    size += inside_bytes
        for table in memtables:
            ts = table.column("ts_ms")
            mask = pc.and_(pc.greater_equal(ts, start_ms), pc.less(ts, end_ms))
            records += pc.sum(pc.cast(mask, pa.int64())).as_py() or 0
            size += pc.sum(pc.filter(table.column("message_bytes"), mask)).as_py() or 0
        return records, size

    def prune(self, live: Callable[[], set[str]]) -> None:
        """Forget segments no longer in the lake (``live`` paths), once there are many."""
        if len(self._known) <= _PRUNE_AT:
            return
        paths = live()
        if len(self._known) > 2 * len(paths):
            with self._lock:
                self._known = {p: v for p, v in self._known.items() if p in paths}


def _count(
    conn: duckdb.DuckDBPyConnection,
    data_dir: Path,
    segments: Sequence[Segment],
    start_ms: int,
    end_ms: int,
) -> list[tuple[int, int, int, int]]:
    """(events, bytes) of each whole file and of its part in range, in one statement.

    One ``read_parquet`` per file, so no schemas need reconciling for two columns all share.
    """
    inside = "ts_ms >= ? AND ts_ms < ?"
    select = (
        "SELECT {i} AS i, count(*), coalesce(sum(message_bytes), 0), "
        f"count(*) FILTER (WHERE {inside}), "
        f"coalesce(sum(message_bytes) FILTER (WHERE {inside}), 0) "
        "FROM read_parquet(?, hive_partitioning = false)"
    )
    parts: list[str] = []
    params: list[object] = []
    for index, segment in enumerate(segments):
        parts.append(select.format(i=index))
        params += [start_ms, end_ms, start_ms, end_ms, str(data_dir / segment.path)]
    rows = conn.execute(" UNION ALL ".join(parts), params).fetchall()
    by_index = {int(row[0]): tuple(int(v) for v in row[1:]) for row in rows}
    return [by_index[i] for i in range(len(segments))]  # type: ignore[misc]
