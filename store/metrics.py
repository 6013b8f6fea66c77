"""The metric store: durable appends to the metric table, reads, flush, compaction, retention.

Same contract as the log store (DESIGN.md, Storage contract). ``put`` serialises rows of
``store.metric_model.METRIC_SCHEMA`` to Arrow IPC and hands them to a group-commit thread of
its own, whose WAL lives under ``<data>/metrics/wal/`` (apart from the log WAL); once the record
is fsync'd the rows join the memtable and the future resolves, so an acknowledged datum is in
the WAL and visible to the next read. ``flush`` writes the memtable as zstd Parquet segments,
one directory per UTC day (``store.metric_lake``), and records them in the catalog together with
the *flushed watermark*: every WAL batch carries a sequence number, and replay skips the batches
at or below the watermark, so a crash at any point of a flush neither loses nor duplicates rows.

The catalog tables (``store.metric_catalog``) live in the log store's DuckDB database: DuckDB
allows one process per file, so the store takes a connection factory (the log ``Store.cursor``).

Raw rows are kept until they pass a horizon of spec §1.8 (``MetricStoreConfig.tiers``); then
``roll_up`` merges them into 60 s, 300 s and 3600 s rows with log-bucket histograms
(``store.metric_rollup``), and ``apply_retention`` drops whole days past the last horizon (455
days). A read sees every tier at once: each datum lives in exactly one of them, and the
statistics SQL uses only the rolled-up rows that fit its buckets (``query.metrics.statistics``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from core.errors import StorageFull, Unavailable
from store import metric_catalog as catalog
from store.commit import CommitLog, PendingAppend
from store.idempotency import IdempotencyKeys, ScopedKey, body_sha256
from store.ipc import from_ipc, to_ipc
from store.layout import WAL_DIR, wal_generation
from store.metric_config import MetricStoreConfig
from store.metric_lake import MetricLake, remove_orphans
from store.metric_memtable import MetricBatch, MetricMemtable
from store.metric_model import METRIC_SCHEMA, conform_rows, mark_plain_samples
from store.metric_sql import MEMTABLE, ListedMetric, list_metrics_sql, read_sql
from store.metric_upkeep import MetricUpkeep
from store.recovery import replay_wal
from store.write_errors import os_error_text, write_failure

__all__ = ["METRICS_DIR", "ListedMetric", "MetricStore", "MetricStoreConfig"]

log = logging.getLogger(__name__)

METRICS_DIR = "metrics"  # <data>/metrics/wal/ holds the metric WAL
RECENTLY_ACTIVE_MS = 3 * 3_600_000  # ListMetrics RecentlyActive=PT3H (spec §2.7)
Connect = Callable[[], duckdb.DuckDBPyConnection]


class MetricStore(MetricUpkeep):
    """The metric table of one data directory.

    Lifecycle: ``open()`` (catalog tables, orphan clean-up), ``recover()`` (WAL replay; reads
    and writes are refused until it is done), then ``put``/``query``/``list_metrics``; the
    scheduler calls ``flush``, ``compact``, ``roll_up`` and ``apply_retention`` (the last three
    in ``store.metric_upkeep``); ``close()`` flushes.
    ``connect`` returns a new DuckDB cursor on the data directory's catalog database.
    """

    def __init__(
        self, config: MetricStoreConfig, connect: Connect, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self._connect = connect
        self._clock = clock
        self.ready = False
        self._catalog: duckdb.DuckDBPyConnection | None = None
        self._catalog_lock = threading.Lock()
        self._view_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._memtable = MetricMemtable()
        self._lake: MetricLake | None = None
        self._commit: CommitLog | None = None
        self._idempotency = IdempotencyKeys()
        self._flushed_seq = 0
        self._next_seq = 1
        self._flush_requested = False

    @property
    def root(self) -> Path:
        """The directory of the metric WAL (``<root>/wal``)."""
        return self.config.data_dir / METRICS_DIR

    # ---- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Open the catalog tables and clean up after a crash; ``recover`` makes it writable."""
        (self.root / WAL_DIR).mkdir(parents=True, exist_ok=True)
        self._catalog = self._connect()
        with self._catalog_lock:
            catalog.ensure_schema(self._catalog)
            segments = catalog.load_segments(self._catalog)
            self._flushed_seq = catalog.flushed_seq(self._catalog)
            since = self._now_ms() - self.config.idempotency_window_ms
            for key, response, seen_ms in catalog.load_idempotency_keys(self._catalog, since):
                scoped, digest = ScopedKey.from_metric_identity(key)
                self._idempotency.remember(scoped, response, seen_ms, digest)
        remove_orphans(self.config.data_dir, {s.path for s in segments})
        self._lake = MetricLake(self.config.data_dir, segments, fsync=self.config.fsync)
        self._next_seq = self._flushed_seq + 1

    def recover(self) -> None:
        """Replay the metric WAL into the memtable, then accept reads and writes."""
        wal_files = sorted((self.root / WAL_DIR).glob("*.wal"), key=wal_generation)
        replayed = replay_wal(wal_files, self._replay_record)
        if replayed:
            log.info("replayed %d metric WAL records from %d files", replayed, len(wal_files))
        self._commit = CommitLog(
            self.root,
            first_generation=max((wal_generation(p) for p in wal_files), default=0) + 1,
            closed_files=wal_files,
            on_durable=self._apply_durable,
            fsync=self.config.fsync,
        )
        self.ready = True

    def close(self) -> None:
        """Stop taking writes, flush everything to Parquet and release the catalog cursor."""
        self.ready = False
        try:
            if self._commit is not None:
                self._commit.close()
                self.flush(force=True)
        finally:
            self._commit = None
            if self._catalog is not None:
                self._catalog.close()
                self._catalog = None

    # ---- writes ----------------------------------------------------------------------------

    def put(
        self,
        rows: pa.Table,
        response: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        principal: str = "",
        request_body: bytes | memoryview = b"",
    ) -> Future[dict[str, Any]]:
        """Append rows of the metric table durably; the future gives ``response`` once acked.

        ``response`` defaults to ``{"accepted": <rows>}``. A batch sent again by the same
        ``principal`` with the same ``idempotency_key`` and ``request_body`` within the window
        is acknowledged again (``"duplicate": true``) and not stored twice; the same key with
        another body is refused (``IdempotencyKeyConflict``).
        """
        self._check_accepting()
        conformed = rows if rows.schema.equals(METRIC_SCHEMA) else conform_rows(rows)
        # The store's flag, whatever the writer sent; segments written from the memtable keep it.
        table, plain = mark_plain_samples(conformed)
        answer = response if response is not None else {"accepted": table.num_rows}
        if not idempotency_key:  # no header, or an empty one
            return self._submit(table, plain, answer, None, None)
        scoped = ScopedKey.for_metrics(principal, idempotency_key)
        digest = body_sha256(request_body)
        return self._idempotency.once(
            scoped, digest, lambda: self._submit(table, plain, answer, scoped, digest)
        )

    def _submit(
        self,
        table: pa.Table,
        plain: bool,
        response: dict[str, Any],
        scoped: ScopedKey | None,
        digest: str | None,
    ) -> Future[dict[str, Any]]:
        answer = orjson.dumps(response).decode()
        idem = [scoped.metric_identity(digest), answer] if scoped is not None else None

        def prepare() -> dict[str, Any]:
            seq, self._next_seq = self._next_seq, self._next_seq + 1
            return {
                "kind": "metrics",
                "seq": seq,
                "count": table.num_rows,
                "ingest_ms": self._now_ms(),
                "idempotency": idem,
            }

        context = (table, plain, response)
        pending = PendingAppend(prepare=prepare, payload=to_ipc(table), context=context)
        return self._commit_().submit(pending)

    def _apply_durable(self, batch: list[PendingAppend]) -> list[dict[str, Any]]:
        """Runs on the commit thread, in WAL order, right after the fsync."""
        answers = []
        for pending in batch:
            assert pending.header is not None
            table, plain, response = pending.context
            self._add_to_memtable(pending.header, table, plain)
            answers.append(response)
        return answers

    def _replay_record(self, header: dict[str, Any], payload: memoryview) -> bool:
        if header.get("kind") != "metrics" or header["seq"] <= self._flushed_seq:
            return False
        self._next_seq = max(self._next_seq, header["seq"] + 1)
        # WAL records written before the roll-up columns and the flag existed lack them.
        self._add_to_memtable(header, *mark_plain_samples(conform_rows(from_ipc(payload))))
        return True

    def _add_to_memtable(self, header: dict[str, Any], table: pa.Table, plain: bool) -> None:
        """Add rows that carry the store's ``plain_samples`` flag; ``plain``: all of them true."""
        idem = header.get("idempotency")
        entry = (idem[0], idem[1], header["ingest_ms"]) if idem else None
        if idem:
            scoped, digest = ScopedKey.from_metric_identity(idem[0])
            self._idempotency.remember(scoped, idem[1], header["ingest_ms"], digest)
        batch = MetricBatch(table, header["seq"], header["ingest_ms"], self._clock(), entry, plain)
        self._memtable.append(batch)

    # ---- reads -----------------------------------------------------------------------------

    def query(
        self,
        start_ms: int,
        end_ms: int,
        sql: str,
        params: Sequence[Any],
        *,
        on_cursor: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
        all_plain: tuple[str, Sequence[Any]] | None = None,
    ) -> pa.Table:
        """Run ``sql``, which reads the relation ``metrics``, over the rows in range.

        The relation holds only rows with ``start_ms <= ts_ms < end_ms``, from the segments
        that overlap the range and the memtable (``store.metric_sql.read_sql``). ``sql`` may
        begin with its own ``WITH``. ``all_plain`` is another statement and its parameters,
        giving the same answer when every row has ``plain_samples`` true: it runs instead when
        the snapshot shows that (the check and the snapshot are one step, so no flush or put
        can slip between them). ``on_cursor`` receives the cursor first, so another thread can
        ``interrupt()`` it.
        """
        self._check_ready()
        with self._view_lock:
            segments = self._lake_().select(start_ms, end_ms)
            batches = self._memtable.snapshot()
        memory = [b.table for b in batches]
        plain = all(s.plain for s in segments) and all(b.plain for b in batches)
        if all_plain is not None and plain:
            sql, params = all_plain
        text, arguments = read_sql(
            sql,
            params,
            segment_paths=[str(self.config.data_dir / s.path) for s in segments if not s.plain],
            plain_segment_paths=[str(self.config.data_dir / s.path) for s in segments if s.plain],
            memory=bool(memory),
            start_ms=start_ms,
            end_ms=end_ms,
        )
        mem = pa.concat_tables(memory) if memory else METRIC_SCHEMA.empty_table()
        cursor = self._connect()
        try:
            if on_cursor is not None:
                on_cursor(cursor)
            cursor.register(MEMTABLE, mem)
            return cursor.sql(text, params=arguments).to_arrow_table()
        finally:
            cursor.close()

    def segment_files(self, start_ms: int, end_ms: int) -> list[Path]:
        """The Parquet segments a read of ``[start_ms, end_ms)`` would open (benchmarks, tools)."""
        with self._view_lock:
            segments = self._lake_().select(start_ms, end_ms)
        return [self.config.data_dir / s.path for s in segments]

    def list_metrics(
        self,
        *,
        namespace: str | None = None,
        metric_name: str | None = None,
        dimensions: Sequence[tuple[str, str | None]] = (),
        recently_active: bool = False,
        after: tuple[str, str, str] | None = None,
        limit: int = 500,
    ) -> list[ListedMetric]:
        """ListMetrics (spec §2.7): metrics in (namespace, name, dims) order after ``after``.

        ``dimensions`` are (name, value or None) filters: a metric matches when it has every
        named dimension, with that value where one is given. ``recently_active`` keeps the
        metrics that received data in the last three hours (by ingestion time).
        """
        self._check_ready()
        since_ms = self._now_ms() - RECENTLY_ACTIVE_MS if recently_active else None
        memory = [
            b.table
            for b in self._memtable.snapshot()
            if since_ms is None or b.ingest_ms >= since_ms
        ]
        sql, params = list_metrics_sql(
            namespace=namespace,
            metric_name=metric_name,
            dimensions=dimensions,
            since_ms=since_ms,
            after=after,
            limit=limit,
        )
        cursor = self._connect()
        try:
            mem = pa.concat_tables(memory) if memory else METRIC_SCHEMA.empty_table()
            cursor.register(MEMTABLE, mem)
            rows = cursor.execute(sql, params).fetchall()
        finally:
            cursor.close()
        return [ListedMetric(*row) for row in rows]

    # ---- maintenance -----------------------------------------------------------------------

    def flush(self, *, force: bool = False) -> int:
        """Move the memtable to Parquet if it is due (or ``force``); return the rows flushed."""
        if not force and not self._flush_due():
            return 0
        with self._flush_lock:
            self._flush_requested = False
            closed = self._commit.rotate() if self._commit is not None else []
            batches = self._memtable.snapshot()
            if batches:
                try:
                    self._flush_batches(batches)
                except OSError as exc:
                    log.error("flushing the metric memtable failed: %s", os_error_text(exc))
                    raise write_failure(
                        "metric Parquet segments", exc, "the datapoints stay in the WAL"
                    ) from exc
            if self._commit is not None:
                self._commit.forget(closed)
            else:
                for path in closed:
                    path.unlink(missing_ok=True)
            return sum(b.table.num_rows for b in batches)

    def _flush_batches(self, batches: list[MetricBatch]) -> None:
        lake = self._lake_()
        # Every memtable batch was flagged where it entered (put or WAL replay).
        segments = lake.write([b.table for b in batches], marked=True)
        last_seq = batches[-1].seq
        index_rows = pa.concat_tables(
            b.table.append_column(
                "ingest_ms", pa.repeat(pa.scalar(b.ingest_ms, pa.int64()), b.table.num_rows)
            )
            for b in batches
        )
        keys = [b.idempotency for b in batches if b.idempotency is not None]
        try:
            with self._catalog_lock:
                conn = self._catalog_()
                conn.begin()
                catalog.insert_segments(conn, segments)
                catalog.set_flushed_seq(conn, last_seq)
                catalog.upsert_index(conn, index_rows)
                catalog.save_idempotency_keys(conn, keys)
                conn.commit()
        except BaseException:
            self._rollback()
            lake.delete_files(segments)
            raise
        self._flushed_seq = max(self._flushed_seq, last_seq)
        with self._view_lock:
            lake.publish(segments)
            self._memtable.drop_prefix(len(batches))

    def stats(self) -> dict[str, Any]:
        commit = self._commit
        return {
            "metric_memtable_bytes": self._memtable.size_bytes,
            "metric_wal_bytes": commit.size_bytes if commit else 0,
            "metric_segments": len(self._lake.all_segments()) if self._lake else 0,
        }

    # ---- helpers ---------------------------------------------------------------------------

    def _flush_due(self) -> bool:
        if self._flush_requested or self._memtable.size_bytes >= self.config.flush_bytes:
            return True
        oldest = self._memtable.oldest_s()
        return oldest is not None and self._clock() - oldest >= self.config.flush_interval_s

    def _check_ready(self) -> None:
        if not self.ready:
            raise Unavailable("the metric store is starting (replaying its WAL); retry soon")

    def _check_accepting(self) -> None:
        self._check_ready()
        memtable_bytes, wal_bytes = self._memtable.size_bytes, self._commit_().size_bytes
        if memtable_bytes >= self.config.max_memtable_bytes:
            self._flush_requested = True  # the next scheduler tick flushes at once
            raise StorageFull(
                f"metric ingest is paused: {memtable_bytes >> 20} MiB of datapoints are waiting "
                "to be written to Parquet; retry after a moment",
                retry_after_s=2,
            )
        if wal_bytes >= self.config.max_wal_bytes:
            self._flush_requested = True
            raise StorageFull(
                f"metric ingest is paused: the metric write-ahead log holds {wal_bytes >> 20} "
                "MiB not yet in Parquet; retry after a moment",
                retry_after_s=2,
            )

    def _rollback(self) -> None:
        try:
            self._catalog_().rollback()
        except duckdb.Error:
            pass  # nothing was open

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _catalog_(self) -> duckdb.DuckDBPyConnection:
        assert self._catalog is not None, "MetricStore.open() first"
        return self._catalog

    def _lake_(self) -> MetricLake:
        assert self._lake is not None, "MetricStore.open() first"
        return self._lake

    def _commit_(self) -> CommitLog:
        if self._commit is None:
            raise Unavailable("the metric store is not open")
        return self._commit
