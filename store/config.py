"""The store's knobs, with the defaults of DESIGN.md's limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class StoreConfig:
    data_dir: Path
    fsync: bool = True
    max_memtable_bytes: int = 256 * MiB
    max_wal_bytes: int = 1024 * MiB
    # A flush runs when the memtable passes flush_bytes or its oldest batch flush_interval_s.
    flush_bytes: int = 64 * MiB
    flush_interval_s: float = 10.0
    compact_min_segments: int = 8
    compact_small_rows: int = 1_000_000
    max_promoted_columns: int = 256
    idempotency_window_ms: int = 24 * 3_600_000
    # How long a file that left the catalog stays on disk for queries already reading it.
    file_grace_s: float = 120.0
