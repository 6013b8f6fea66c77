"""The storage engine: durable appends, read-your-writes snapshots, flush, compaction, retention.

Write path: ``submit_logs`` shapes a batch (promoted columns + overflow map), serialises it to
Arrow IPC and hands it to the group-commit thread; once the WAL record is fsync'd the batch joins
the memtable and the future resolves. Read path: ``query_logs`` takes a snapshot of the segment
list and the memtable under the view lock and runs SQL over both. Maintenance (flush, compaction,
retention) is plain methods the server's scheduler calls.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.errors import Conflict, NotFound, StorageFull, Unavailable
from store import catalog
from store.commit import CommitLog, PendingAppend
from store.config import StoreConfig
from store.fields import FieldPromoter
from store.idempotency import IdempotencyKeys, KeyRecord, ScopedKey, body_sha256
from store.ipc import from_ipc, to_ipc
from store.lake import Lake
from store.layout import CATALOG_FILE, WAL_DIR, group_dir, wal_generation
from store.memtable import MemBatch, Memtable
from store.recovery import remove_orphans, replay_wal
from store.retention import plan_retention
from store.scan import build_relation, relation_schema
from store.schema import empty_log_table
from store.totals import SegmentTotals

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GroupInfo:
    name: str
    created_ms: int
    retention_days: int | None
    stored_bytes: int
    segment_count: int


class _GroupState:
    """What the hot path needs to know about a group, kept in memory."""

    def __init__(self, row: catalog.LogGroup, promoted: set[str], limit: int) -> None:
        self.row = row
        self.lock = threading.Lock()
        self.promoter = FieldPromoter(promoted, limit=limit)
        self.streams: set[str] = set()
        self.next_seq = row.flushed_seq + 1


class Store:
    def __init__(self, config: StoreConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self.ready = False
        self._db: duckdb.DuckDBPyConnection | None = None
        self._catalog_lock = threading.Lock()
        self._groups_lock = threading.Lock()
        self._view_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._groups: dict[str, _GroupState] = {}
        self._by_id: dict[int, _GroupState] = {}
        self._memtable = Memtable()
        self._lake: Lake | None = None
        self._commit: CommitLog | None = None
        self._idempotency = IdempotencyKeys()
        self._oldest_unflushed: float | None = None
        self._totals = SegmentTotals()

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

    # ---- writes ----------------------------------------------------------------------------

    def submit_logs(
        self,
        group: str,
        stream: str,
        events: pa.Table,
        fields: pa.Table,
        response: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        principal: str = "",
        request_body: bytes | memoryview = b"",
    ) -> Future[dict[str, Any]]:
        """Append decoded events durably; the future gives ``response`` once they are acked.

        ``events`` has the columns of ``store.schema.EVENT_SCHEMA`` minus ``log_stream``;
        ``fields`` the discovered field columns. The group and stream are created on first use.
        An ``idempotency_key`` is scoped by ``principal`` (the caller's ARN), group and stream:
        sent again in that scope with the same ``request_body`` (compared by SHA-256) it gives
        the first answer plus ``"duplicate": true`` and stores nothing; with another body it
        raises ``IdempotencyKeyConflict``.
        """
        self._check_accepting()
        if not idempotency_key:  # no header, or an empty one
            return self._submit(group, stream, events, fields, response, None)
        record = KeyRecord(
            ScopedKey(principal, group, stream, idempotency_key),
            body_sha256(request_body),
            orjson.dumps(response).decode(),
        )
        scoped = record.scoped
        replay = self._idempotency.claim(scoped, record.body_sha256)
        if replay is not None:
            return replay
        try:
            future = self._submit(group, stream, events, fields, response, record)
        except BaseException as exc:
            self._idempotency.release(scoped, exc)
            raise
        future.add_done_callback(lambda f: self._idempotency.settle(scoped, f))
        return future

    def _submit(
        self,
        group: str,
        stream: str,
        events: pa.Table,
        fields: pa.Table,
        response: dict[str, Any],
        idempotency: KeyRecord | None,
    ) -> Future[dict[str, Any]]:
        state = self._group_for_write(group)
        self._ensure_stream(state, stream)
        with state.lock:
            columns, overflow = state.promoter.shape(fields)
        table = _assemble(stream, events, columns, overflow)
        payload = to_ipc(table)
        row_count = table.num_rows
        idem = idempotency.to_header() if idempotency is not None else None

        def prepare() -> dict[str, Any]:
            first_seq = state.next_seq
            state.next_seq += row_count
            return {
                "kind": "logs",
                "group_id": state.row.id,
                "group": state.row.name,
                "first_seq": first_seq,
                "count": row_count,
                "ingest_ms": self._now_ms(),
                "idempotency": idem,
            }

        pending = PendingAppend(prepare=prepare, payload=payload, context=(table, response))
        return self._commit_().submit(pending)

    def _apply_durable(self, batch: list[PendingAppend]) -> list[dict[str, Any]]:
        """Runs on the commit thread, in WAL order, right after the fsync."""
        for pending in batch:
            assert pending.header is not None
            self._add_to_memtable(pending.header, pending.context[0])
        if self._oldest_unflushed is None:
            self._oldest_unflushed = self._clock()
        return [pending.context[1] for pending in batch]

    def _replay_record(self, header: dict[str, Any], payload: memoryview) -> bool:
        state = self._by_id.get(header["group_id"])
        if state is None or header.get("kind") != "logs":
            return False
        first, count = header["first_seq"], header["count"]
        skip = state.row.flushed_seq - first + 1
        if skip >= count:
            return False
        table = from_ipc(payload)
        if skip > 0:
            table = table.slice(skip)
            header = {**header, "first_seq": first + skip, "count": count - skip}
        state.promoter.promoted.update(table.column_names)
        state.next_seq = max(state.next_seq, first + count)
        self._add_to_memtable(header, table)
        return True

    def _add_to_memtable(self, header: dict[str, Any], table: pa.Table) -> None:
        first_seq, count = header["first_seq"], header["count"]
        full = _with_system_columns(table, header["group"], header["ingest_ms"], first_seq)
        idem = header.get("idempotency")
        entry = None
        if idem:
            record = KeyRecord.from_header(idem)
            self._remember_key(record, header["ingest_ms"])
            entry = record.pack(header["ingest_ms"])
        self._memtable.append(
            header["group_id"], MemBatch(full, first_seq, first_seq + count - 1, entry)
        )

    def _remember_key(self, record: KeyRecord, seen_ms: int) -> None:
        self._idempotency.remember(record.scoped, record.response_json, seen_ms, record.body_sha256)

    # ---- reads -----------------------------------------------------------------------------

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

    # ---- maintenance -----------------------------------------------------------------------

    def flush(self, *, force: bool = False) -> int:
        """Move the memtable to Parquet if it is due (or ``force``); return the rows flushed."""
        if not force and not self._flush_due():
            return 0
        with self._flush_lock:
            closed = self._commit.rotate() if self._commit is not None else []
            snapshot = self._memtable.snapshot_all()
            self._oldest_unflushed = self._clock() if self._memtable.size_bytes else None
            flushed, failed = 0, False
            for group_id, batches in snapshot.items():
                try:
                    flushed += self._flush_group(group_id, batches)
                except OSError as exc:
                    failed = True
                    log.error("flushing log group %s failed: %s", group_id, exc)
            if not failed and self._commit is not None:
                self._commit.forget(closed)
            elif not failed:
                for path in closed:
                    path.unlink(missing_ok=True)
            if failed:
                raise StorageFull("could not write Parquet segments; events stay in the WAL")
            return flushed

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

    def apply_retention(self, *, dry_run: bool = False) -> list[tuple[str, int]]:
        """Drop whole partitions older than their group's retention; return (group, hour_ms)."""
        lake = self._lake_()
        with self._flush_lock:
            partitions = lake.partitions()
            days = {str(s.row.id): s.row.retention_days for s in self._by_id.values()}
            expired = plan_retention(partitions, days, self._now_ms())
            out = [(self._by_id[int(p.group)].row.name, p.hour_ms) for p in expired]
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

    def stats(self) -> dict[str, Any]:
        commit = self._commit
        return {
            "memtable_bytes": self._memtable.size_bytes,
            "wal_bytes": commit.size_bytes if commit else 0,
            "segments": len(self._lake.all_segments()) if self._lake else 0,
            "groups": len(self._groups),
        }

    # ---- helpers ---------------------------------------------------------------------------

    def _flush_due(self) -> bool:
        if self._memtable.size_bytes >= self.config.flush_bytes:
            return True
        oldest = self._oldest_unflushed
        return oldest is not None and self._clock() - oldest >= self.config.flush_interval_s

    def _check_ready(self) -> None:
        if not self.ready:
            raise Unavailable("the store is starting (replaying the write-ahead log); retry soon")

    def _check_accepting(self) -> None:
        self._check_ready()
        if self._memtable.size_bytes >= self.config.max_memtable_bytes:
            self._kick_flush()
            raise StorageFull(
                f"ingest is paused: {self._memtable.size_bytes >> 20} MiB of events are waiting "
                "to be written to Parquet; retry after a moment",
                retry_after_s=2,
            )
        if self._commit_().size_bytes >= self.config.max_wal_bytes:
            self._kick_flush()
            raise StorageFull(
                f"ingest is paused: the write-ahead log holds {self._commit_().size_bytes >> 20}"
                " MiB not yet in Parquet; retry after a moment",
                retry_after_s=2,
            )

    def _kick_flush(self) -> None:
        self._oldest_unflushed = 0.0  # the next scheduler tick flushes at once

    def _group_for_write(self, name: str) -> _GroupState:
        state = self._groups.get(name)
        if state is not None:
            return state
        with self._groups_lock:
            state = self._groups.get(name)
            return state if state is not None else self._create_group_locked(name, None)

    def _create_group_locked(self, name: str, retention_days: int | None) -> _GroupState:
        with self._catalog_lock:
            row = catalog.insert_group(self._conn(), name, self._now_ms(), retention_days)
        # A previous incarnation of the name may have left files behind a crash.
        shutil.rmtree(group_dir(self.config.data_dir, name), ignore_errors=True)
        return self._add_group_state(row, set())

    def _add_group_state(self, row: catalog.LogGroup, promoted: set[str]) -> _GroupState:
        state = _GroupState(row, promoted, self.config.max_promoted_columns)
        self._groups[row.name] = state
        self._by_id[row.id] = state
        return state

    def _ensure_stream(self, state: _GroupState, stream: str) -> None:
        if stream in state.streams:
            return
        with self._catalog_lock:
            catalog.insert_streams(self._conn(), state.row.id, [stream], self._now_ms())
        state.streams.add(stream)

    def _state(self, name: str) -> _GroupState:
        state = self._groups.get(name)
        if state is None:
            raise NotFound(f"log group {name!r} does not exist", details={"group": name})
        return state

    def _info(self, state: _GroupState) -> GroupInfo:
        segments = self._lake_().segments(state.row.id)
        return GroupInfo(
            name=state.row.name,
            created_ms=state.row.created_ms,
            retention_days=state.row.retention_days,
            stored_bytes=sum(s.size_bytes for s in segments),
            segment_count=len(segments),
        )

    def _rollback(self) -> None:
        try:
            self._conn().rollback()
        except duckdb.Error:
            pass  # nothing was open

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _conn(self) -> duckdb.DuckDBPyConnection:
        assert self._db is not None, "Store.open() first"
        return self._db

    def _lake_(self) -> Lake:
        assert self._lake is not None, "Store.open() first"
        return self._lake

    def _commit_(self) -> CommitLog:
        if self._commit is None:
            raise Unavailable("the store is not open")
        return self._commit


def _assemble(
    stream: str,
    events: pa.Table,
    columns: list[tuple[str, pa.ChunkedArray]],
    overflow: pa.Array,
) -> pa.Table:
    """The WAL payload: stream, event columns, promoted field columns, overflow map."""
    names = ["log_stream", *events.column_names, *(n for n, _ in columns), "fields"]
    arrays: list[Any] = [
        pa.repeat(pa.scalar(stream, pa.string()), events.num_rows),
        *events.columns,
        *(c for _, c in columns),
        overflow,
    ]
    return pa.Table.from_arrays(arrays, names=names)


def _with_system_columns(table: pa.Table, group: str, ingest_ms: int, first_seq: int) -> pa.Table:
    n = table.num_rows
    table = table.add_column(0, "log_group", pa.repeat(pa.scalar(group, pa.string()), n))
    index = table.schema.get_field_index("ts_ms") + 1
    table = table.add_column(index, "ingest_ms", pa.repeat(pa.scalar(ingest_ms, pa.int64()), n))
    return table.add_column(index + 1, "seq", _sequence(first_seq, n))


_COUNTING = pa.array(range(1 << 16), pa.int64())


def _sequence(first: int, count: int) -> pa.Array:
    """``first, first + 1, ...``: one vectorised add on the commit thread, instead of a
    Python int per event."""
    counting = _COUNTING if count <= len(_COUNTING) else pa.array(range(count), pa.int64())
    return pc.add(counting.slice(0, count), pa.scalar(first, pa.int64()))
