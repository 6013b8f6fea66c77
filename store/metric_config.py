"""The metric store's knobs, with the defaults of DESIGN.md's limits and spec §1.8's first tier."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store.config import MiB, StoreConfig


@dataclass(frozen=True, slots=True)
class MetricStoreConfig:
    data_dir: Path
    fsync: bool = True
    max_memtable_bytes: int = 64 * MiB
    max_wal_bytes: int = 256 * MiB
    # A flush runs when the memtable passes flush_bytes or its oldest batch flush_interval_s.
    flush_bytes: int = 16 * MiB
    flush_interval_s: float = 10.0
    compact_min_segments: int = 8
    compact_small_rows: int = 1_000_000
    raw_retention_days: int = 15
    idempotency_window_ms: int = 24 * 3_600_000
    file_grace_s: float = 120.0

    @classmethod
    def from_store_config(cls, config: StoreConfig, **overrides: Any) -> MetricStoreConfig:
        """The metric store's knobs, following the log store's where they mean the same."""
        base: dict[str, Any] = {
            "data_dir": config.data_dir,
            "fsync": config.fsync,
            "flush_interval_s": config.flush_interval_s,
            "compact_min_segments": config.compact_min_segments,
            "idempotency_window_ms": config.idempotency_window_ms,
            "file_grace_s": config.file_grace_s,
        }
        return cls(**(base | overrides))
