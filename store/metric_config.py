"""The metric store's knobs, with the defaults of DESIGN.md's limits and spec §1.8's tiers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store.config import MiB, StoreConfig

__all__ = ["DEFAULT_TIERS", "ROLLUP_RESOLUTIONS_S", "MetricStoreConfig", "Tiers"]

_DAY_MS = 86_400_000
# The bucket widths of the rolled-up tiers (spec §1.8), finest first.
ROLLUP_RESOLUTIONS_S = (60, 300, 3_600)


@dataclass(frozen=True, slots=True)
class Tiers:
    """How long each granularity is kept (spec §1.8); operators may change them.

    Both sides use the same horizons: the roll-up job (``store.metric_rollup``) merges data into
    the next coarser tier once it passes one, and the reads (``query.metrics.window``) refuse
    buckets that the finest tier able to answer a period no longer holds.
    """

    sub_minute_ms: int = 3 * 3_600_000
    minute_ms: int = 15 * _DAY_MS
    five_minutes_ms: int = 63 * _DAY_MS
    hour_ms: int = 455 * _DAY_MS


DEFAULT_TIERS = Tiers()


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
    # Raw rows stay until tiers.minute_ms (exact percentiles for 15 days), then roll up.
    tiers: Tiers = field(default=DEFAULT_TIERS)
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
