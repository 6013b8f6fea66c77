"""The log store's write path: submit, group commit, memtable, idempotency keys.

``submit_logs`` shapes a batch (promoted columns + overflow map), serialises it to Arrow IPC and
hands it to the group-commit thread; once the WAL record is fsync'd the batch joins the memtable
and the future resolves. ``StoreWrites`` is a base of ``store.engine.Store``.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import StorageFull
from store import catalog
from store.commit import PendingAppend
from store.idempotency import KeyRecord, ScopedKey, body_sha256
from store.ipc import from_ipc, to_ipc
from store.log_state import StoreState, _GroupState
from store.memtable import MemBatch

__all__ = ["StoreWrites"]


class StoreWrites(StoreState):
    """Durable appends: ``submit_logs`` and what the commit thread and WAL replay call back."""

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
        return self._idempotency.once(
            record.scoped,
            record.body_sha256,
            lambda: self._submit(group, stream, events, fields, response, record),
        )

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

    def _ensure_stream(self, state: _GroupState, stream: str) -> None:
        if stream in state.streams:
            return
        with self._catalog_lock:
            catalog.insert_streams(self._conn(), state.row.id, [stream], self._now_ms())
        state.streams.add(stream)


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
