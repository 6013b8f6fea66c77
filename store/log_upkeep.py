"""The log store's maintenance: flush to Parquet, compaction, retention.

Plain methods the server's scheduler calls. ``StoreUpkeep`` is a base of ``store.engine.Store``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pyarrow.parquet as pq

from core.errors import WatchkeepError
from store import catalog
from store.idempotency import KeyRecord
from store.log_state import StoreState
from store.memtable import MemBatch
from store.retention import plan_retention
from store.write_errors import is_out_of_space, os_error_text, write_failure

__all__ = ["ExpiredPartition", "StoreUpkeep"]

# Named as before the split, so log configuration and records stay the same.
log = logging.getLogger("store.engine")


@dataclass(frozen=True, slots=True)
class ExpiredPartition:
    """One (log group, hour) partition a retention run dropped or would drop, with what it held."""

    log_group: str
    hour_ms: int
    segments: int
    rows: int
    size_bytes: int


class StoreUpkeep(StoreState):
    """``flush``, ``compact``, ``apply_retention``."""

    def flush(self, *, force: bool = False) -> int:
        """Move the memtable to Parquet if it is due (or ``force``); return the rows flushed."""
        if not force and not self._flush_due():
            return 0
        with self._flush_lock:
            closed = self._commit.rotate() if self._commit is not None else []
            snapshot = self._memtable.snapshot_all()
            self._oldest_unflushed = self._clock() if self._memtable.size_bytes else None
            flushed = 0
            failures: list[tuple[str, OSError]] = []
            for group_id, batches in snapshot.items():
                try:
                    flushed += self._flush_group(group_id, batches)
                except OSError as exc:
                    group = self._group_label(group_id)
                    failures.append((group, exc))
                    log.error("flushing log group %s failed: %s", group, os_error_text(exc))
            if failures:
                raise _flush_error(failures)
            if self._commit is not None:
                self._commit.forget(closed)
            else:
                for path in closed:
                    path.unlink(missing_ok=True)
            return flushed

    def _group_label(self, group_id: int) -> str:
        state = self._by_id.get(group_id)
        name = state.row.name if state is not None else "(deleted)"
        return f"{name[:80]!r}{'...' if len(name) > 80 else ''} (id {group_id})"

    def _flush_group(self, group_id: int, batches: list[MemBatch]) -> int:
        keys = [KeyRecord.unpack(b.idempotency) for b in batches if b.idempotency is not None]
        state = self._by_id.get(group_id)
        if state is None:
            self._drop_deleted_group_batches(group_id, batches, keys)
            return 0
        lake = self._lake_()
        segments = lake.write(group_id, state.row.name, [b.table for b in batches])
        last_seq = batches[-1].last_seq
        try:
            with self._catalog_lock:
                conn = self._conn()
                conn.begin()
                catalog.insert_segments(conn, segments)
                catalog.set_flushed_seq(conn, group_id, last_seq)
                catalog.save_idempotency_keys(conn, keys)
                conn.commit()
        except BaseException:
            self._rollback()
            lake.delete_files(segments)
            raise
        state.row.flushed_seq = max(state.row.flushed_seq, last_seq)
        with self._view_lock:
            lake.publish(segments)
            self._memtable.drop_prefix(group_id, len(batches))
        return sum(b.table.num_rows for b in batches)

    def _drop_deleted_group_batches(
        self, group_id: int, batches: list[MemBatch], keys: list[tuple[KeyRecord, int]]
    ) -> None:
        """Forget batches that reached the memtable after their group was deleted.

        A batch already on its way to the WAL when ``delete_group`` ran is acknowledged (the
        delete came after it) and lands under the dead group id; nothing reads it, but it would
        count towards the memtable limit until a restart. Its keys are kept, so a retry is
        still answered as a duplicate rather than recreating the group.
        """
        with self._catalog_lock:
            catalog.save_idempotency_keys(self._conn(), keys)
        with self._view_lock:
            self._memtable.drop_prefix(group_id, len(batches))

    def compact(self) -> int:
        """Merge small segments of busy partitions; return how many segments were merged."""
        lake = self._lake_()
        merged = 0
        with self._flush_lock:
            candidates = lake.compaction_candidates(
                self.config.compact_min_segments, self.config.compact_small_rows
            )
            for group_id, old in candidates:
                state = self._by_id.get(group_id)
                if state is None:
                    continue
                tables = [pq.read_table(self.config.data_dir / s.path) for s in old]
                new = lake.write(group_id, state.row.name, tables)
                try:
                    with self._catalog_lock:
                        conn = self._conn()
                        conn.begin()
                        catalog.delete_segments(conn, [s.path for s in old])
                        catalog.insert_segments(conn, new)
                        conn.commit()
                except BaseException:
                    self._rollback()
                    lake.delete_files(new)
                    raise
                with self._view_lock:
                    lake.publish(new, removed=old)
                merged += len(old)
        lake.purge_doomed(self.config.file_grace_s)
        return merged

    def apply_retention(self, *, dry_run: bool = False) -> list[ExpiredPartition]:
        """Drop whole partitions older than their group's retention; return what they held."""
        lake = self._lake_()
        with self._flush_lock:
            partitions = lake.partitions()
            days = {str(s.row.id): s.row.retention_days for s in self._by_id.values()}
            expired = plan_retention(partitions, days, self._now_ms())
            # Counted from the segments this plan drops, under the flush lock, so a flush
            # landing meanwhile cannot make the counts disagree with what went.
            out = [
                ExpiredPartition(
                    log_group=self._by_id[int(p.group)].row.name,
                    hour_ms=p.hour_ms,
                    segments=len(partitions[p]),
                    rows=sum(s.row_count for s in partitions[p]),
                    size_bytes=sum(s.size_bytes for s in partitions[p]),
                )
                for p in expired
            ]
            if dry_run:
                return out
            doomed = [s for p in expired for s in partitions[p]]
            if doomed:
                with self._catalog_lock:
                    catalog.delete_segments(self._conn(), [s.path for s in doomed])
                with self._view_lock:
                    lake.publish((), removed=doomed)
        self._prune_idempotency_keys()
        return out

    def _prune_idempotency_keys(self) -> None:
        horizon_ms = self._now_ms() - self.config.idempotency_window_ms
        self._idempotency.prune(horizon_ms)
        with self._catalog_lock:
            catalog.prune_idempotency_keys(self._conn(), horizon_ms)

    def _flush_due(self) -> bool:
        if self._memtable.size_bytes >= self.config.flush_bytes:
            return True
        oldest = self._oldest_unflushed
        return oldest is not None and self._clock() - oldest >= self.config.flush_interval_s


def _flush_error(failures: list[tuple[str, OSError]]) -> WatchkeepError:
    """The error a failed flush raises, about a group whose disk is full if there is one."""
    full = [(g, e) for g, e in failures if is_out_of_space(e)]
    group, exc = (full or failures)[0]
    others = f" (and {len(failures) - 1} more log group(s))" if len(failures) > 1 else ""
    subject = f"Parquet segments of log group {group}{others}"
    return write_failure(subject, exc, "the events stay in the WAL")
