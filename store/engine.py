"""The storage engine: durable appends, read-your-writes snapshots, flush, compaction, retention.

Write path: ``submit_logs`` shapes a batch (promoted columns + overflow map), serialises it to
Arrow IPC and hands it to the group-commit thread; once the WAL record is fsync'd the batch joins
the memtable and the future resolves. Read path: ``query_logs`` takes a snapshot of the segment
list and the memtable under the view lock and runs SQL over both. Maintenance (flush, compaction,
retention) is plain methods the server's scheduler calls.

This module holds the lifecycle (open, WAL recovery, close) and the log groups; the write path
is in ``store.log_writes``, the read path in ``store.log_reads`` and maintenance in
``store.log_upkeep``, all bases of ``Store`` over the shared state of ``store.log_state``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import duckdb

from core.errors import Conflict
from store import catalog
from store.commit import CommitLog
from store.lake import Lake
from store.layout import CATALOG_FILE, WAL_DIR, wal_generation
from store.log_reads import StoreReads
from store.log_state import _GroupState
from store.log_upkeep import StoreUpkeep
from store.log_writes import StoreWrites
from store.log_writes import _assemble as _assemble  # re-exported: tests use these helpers
from store.log_writes import _sequence as _sequence
from store.log_writes import _with_system_columns as _with_system_columns
from store.recovery import remove_orphans, replay_wal

__all__ = ["GroupInfo", "Store"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GroupInfo:
    name: str
    created_ms: int
    retention_days: int | None
    stored_bytes: int
    segment_count: int


class Store(StoreWrites, StoreReads, StoreUpkeep):
    """The log store: lifecycle and groups here; writes, reads and maintenance in its bases
    (``store.log_writes``, ``store.log_reads``, ``store.log_upkeep``) over ``store.log_state``."""

    # ---- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Open the catalog and clean up after a crash; ``recover`` then makes it writable."""
        data_dir = self.config.data_dir
        (data_dir / WAL_DIR).mkdir(parents=True, exist_ok=True)
        self._db = duckdb.connect(str(data_dir / CATALOG_FILE))
        # Defence in depth under the query compiler's bound parameters: no SQL run on this
        # database (queries, lookups) can open a file outside the data directory.
        self._db.execute("SET allowed_directories = [?]", [f"{data_dir.resolve()}/"])
        self._db.execute("SET enable_external_access = false")
        with self._catalog_lock:
            catalog.ensure_schema(self._db)
            groups = catalog.load_groups(self._db)
            streams = catalog.load_streams(self._db)
            segments = catalog.load_segments(self._db)
            since = self._now_ms() - self.config.idempotency_window_ms
            for record, seen_ms in catalog.load_idempotency_keys(self._db, since):
                self._remember_key(record, seen_ms)
        remove_orphans(data_dir, {s.path for s in segments})
        self._lake = Lake(data_dir, segments, fsync=self.config.fsync)
        for row in groups:
            promoted = {n for s in self._lake.segments(row.id) for n in s.columns}
            self._add_group_state(row, promoted)
        for group_id, name, _ in streams:
            if group_id in self._by_id:
                self._by_id[group_id].streams.add(name)
        for segment in segments:
            state = self._by_id.get(segment.group_id)
            if state is not None:
                state.next_seq = max(state.next_seq, segment.max_seq + 1)

    def recover(self) -> None:
        """Replay the WAL into the memtable, then accept reads and writes."""
        data_dir = self.config.data_dir
        wal_files = sorted((data_dir / WAL_DIR).glob("*.wal"), key=wal_generation)
        replayed = replay_wal(wal_files, self._replay_record)
        if replayed:
            log.info("replayed %d WAL records from %d files", replayed, len(wal_files))
            self._oldest_unflushed = self._clock()
        next_generation = max((wal_generation(p) for p in wal_files), default=0) + 1
        self._commit = CommitLog(
            data_dir,
            first_generation=next_generation,
            closed_files=wal_files,
            on_durable=self._apply_durable,
            fsync=self.config.fsync,
        )
        self.ready = True

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor on the catalog database, for one thread's use."""
        return self._conn().cursor()

    def close(self) -> None:
        """Stop taking writes, flush everything to Parquet and close the catalog."""
        if self._commit is None:
            if self._db is not None:
                self._db.close()
            return
        self.ready = False
        self._commit.close()
        try:
            self.flush(force=True)
        finally:
            self._commit = None
            if self._db is not None:
                self._db.close()

    # ---- groups ----------------------------------------------------------------------------

    def list_groups(self, prefix: str = "") -> list[GroupInfo]:
        with self._groups_lock:
            states = [s for name, s in sorted(self._groups.items()) if name.startswith(prefix)]
        return [self._info(s) for s in states]

    def get_group(self, name: str) -> GroupInfo:
        return self._info(self._state(name))

    def incarnation(self, name: str) -> int:
        """The group's catalog id: never reused, so a deleted and re-created group has a new one
        (its creation time in ms could be the same)."""
        return int(self._state(name).row.id)

    def has_group(self, name: str) -> bool:
        return name in self._groups

    def has_stream(self, group: str, stream: str) -> bool:
        state = self._groups.get(group)
        return state is not None and stream in state.streams

    def create_group(self, name: str, *, retention_days: int | None = None) -> GroupInfo:
        with self._groups_lock:
            if name in self._groups:
                raise Conflict(f"log group {name!r} already exists", details={"group": name})
            state = self._create_group_locked(name, retention_days)
        return self._info(state)

    def put_retention(self, name: str, retention_days: int | None) -> GroupInfo:
        state = self._state(name)
        with self._catalog_lock:
            catalog.update_retention(self._conn(), state.row.id, retention_days)
        state.row.retention_days = retention_days
        return self._info(state)

    def delete_group(self, name: str) -> None:
        state = self._state(name)
        with self._flush_lock, self._groups_lock:
            with self._catalog_lock:
                catalog.delete_group(self._conn(), state.row.id)
            with self._view_lock:
                self._memtable.drop_group(state.row.id)
                self._lake_().forget_group(state.row.id)
            del self._groups[name]
            del self._by_id[state.row.id]
        # WAL records of the deleted group stay until the next flush; replay skips them
        # because their group id no longer exists.

    def stats(self) -> dict[str, Any]:
        commit = self._commit
        return {
            "memtable_bytes": self._memtable.size_bytes,
            "wal_bytes": commit.size_bytes if commit else 0,
            "segments": len(self._lake.all_segments()) if self._lake else 0,
            "groups": len(self._groups),
        }

    def _info(self, state: _GroupState) -> GroupInfo:
        segments = self._lake_().segments(state.row.id)
        return GroupInfo(
            name=state.row.name,
            created_ms=state.row.created_ms,
            retention_days=state.row.retention_days,
            stored_bytes=sum(s.size_bytes for s in segments),
            segment_count=len(segments),
        )
