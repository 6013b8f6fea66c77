"""Acknowledged metric rows not yet in Parquet, in WAL order, readable by queries. Thread-safe.

The commit thread appends batches in WAL order, so a flush that takes the first n batches has
flushed every sequence number up to the last one of them: the flushed watermark is safe.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True, slots=True)
class MetricBatch:
    table: pa.Table
    seq: int
    ingest_ms: int
    applied_s: float  # clock when it joined the memtable: what makes a flush due
    idempotency: tuple[str, str, int] | None
    plain: bool = False  # every row's plain_samples is true (store.metric_model)


class MetricMemtable:
    """Acknowledged rows not yet in Parquet, in WAL order. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: list[MetricBatch] = []
        self.size_bytes = 0

    def append(self, batch: MetricBatch) -> None:
        with self._lock:
            self._batches.append(batch)
            self.size_bytes += batch.table.nbytes

    def snapshot(self) -> list[MetricBatch]:
        with self._lock:
            return list(self._batches)

    def oldest_s(self) -> float | None:
        with self._lock:
            return self._batches[0].applied_s if self._batches else None

    def drop_prefix(self, count: int) -> None:
        with self._lock:
            self.size_bytes -= sum(b.table.nbytes for b in self._batches[:count])
            del self._batches[:count]
