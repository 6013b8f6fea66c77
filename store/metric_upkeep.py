"""Compaction, roll-up and retention of the metric store: rewrites of published segments.

``MetricUpkeep`` is a base class of ``store.metrics.MetricStore`` and works on its state (the
attributes declared below); it exists to keep that module to one reason to change. Each job
writes its new segments first, then swaps them for the old ones in one catalog transaction, and
publishes the change to new read snapshots under the view lock; files that leave the catalog are
deleted after a grace period (``store.metric_lake``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import duckdb
import pyarrow.parquet as pq

from store import metric_catalog as catalog
from store.idempotency import IdempotencyKeys
from store.metric_catalog import MetricSegment
from store.metric_config import MetricStoreConfig
from store.metric_lake import DAY_MS, MetricLake, day_floor_ms
from store.metric_model import conform_rows
from store.metric_rollup import RollupHook, RollupTask, plan_rollups, rolled_rows

__all__ = ["MetricUpkeep"]


class MetricUpkeep:
    """The segment jobs the scheduler runs: ``compact``, ``roll_up``, ``apply_retention``."""

    config: MetricStoreConfig
    _connect: Callable[[], duckdb.DuckDBPyConnection]
    _flush_lock: threading.Lock
    _catalog_lock: threading.Lock
    _view_lock: threading.Lock
    _idempotency: IdempotencyKeys
    # Provided by ``MetricStore``.
    _lake_: Callable[[], MetricLake]
    _catalog_: Callable[[], duckdb.DuckDBPyConnection]
    _rollback: Callable[[], None]
    _now_ms: Callable[[], int]

    def compact(self) -> int:
        """Merge the small segments of busy days; return how many segments were merged."""
        lake = self._lake_()
        merged = 0
        with self._flush_lock:
            for old in lake.compaction_candidates(
                self.config.compact_min_segments, self.config.compact_small_rows
            ):
                tables = [
                    conform_rows(pq.read_table(self.config.data_dir / s.path, partitioning=None))
                    for s in old
                ]
                self._swap_segments(old, lake.write(tables))
                merged += len(old)
        lake.purge_doomed(self.config.file_grace_s)
        return merged

    def roll_up(
        self, *, now_ms: int | None = None, hook: RollupHook | None = None
    ) -> list[RollupTask]:
        """Merge the days past a horizon into their coarser tier (spec §1.8); the tasks done.

        Idempotent: a day is rolled up once, and a second run finds nothing to do. ``now_ms``
        defaults to the store's clock; ``hook`` lets tests crash between the steps.
        """
        lake = self._lake_()
        now = self._now_ms() if now_ms is None else now_ms
        done = []
        with self._flush_lock:
            for task in plan_rollups(lake.all_segments(), now, self.config.tiers):
                rows = rolled_rows(task, self.config.data_dir, self._connect)
                self._swap_segments(list(task.sources), lake.write([rows]), hook)
                done.append(task)
        lake.purge_doomed(self.config.file_grace_s)
        return done

    def _swap_segments(
        self, old: list[MetricSegment], new: list[MetricSegment], hook: RollupHook | None = None
    ) -> None:
        """Replace ``old`` by the written ``new`` in one catalog transaction, then publish.

        Until the commit the catalog names only ``old``, after it only ``new``: a crash on
        either side leaves files that no catalog row names, which ``open`` deletes.
        """
        lake = self._lake_()
        try:
            if hook is not None:
                hook("written")
            with self._catalog_lock:
                conn = self._catalog_()
                conn.begin()
                catalog.insert_segments(conn, new)
                if hook is not None:
                    hook("inserted")
                catalog.delete_segments(conn, [s.path for s in old])
                conn.commit()
        except BaseException:
            self._rollback()
            lake.delete_files(new)
            raise
        with self._view_lock:
            lake.publish(new, removed=old)

    def apply_retention(self, *, dry_run: bool = False, now_ms: int | None = None) -> list[int]:
        """Drop whole days past the last horizon (spec §1.8: 455 days); return their ``day_ms``.

        A day goes once every datapoint it can hold is older than ``tiers.hour_ms``, rolled up
        or not. The metric index forgets metrics with no datapoint left.
        """
        lake = self._lake_()
        now = self._now_ms() if now_ms is None else now_ms
        horizon_ms = now - self.config.tiers.hour_ms
        with self._flush_lock:
            days = lake.days()
            expired = sorted(day for day in days if day + DAY_MS <= horizon_ms)
            if dry_run:
                return expired
            doomed = [s for day in expired for s in days[day]]
            with self._catalog_lock:
                conn = self._catalog_()
                conn.begin()
                try:
                    catalog.delete_segments(conn, [s.path for s in doomed])
                    catalog.prune_index(conn, day_floor_ms(horizon_ms))
                    catalog.prune_idempotency_keys(conn, now - self.config.idempotency_window_ms)
                    conn.commit()
                except BaseException:
                    self._rollback()
                    raise
            with self._view_lock:
                lake.publish((), removed=doomed)
        self._idempotency.prune(now - self.config.idempotency_window_ms)
        return expired
