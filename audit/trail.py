"""The audit trail's appender: a hash-chained JSONL write-ahead log, sealed into Parquet.

One commit thread owns the chain. It takes every queued record, assigns the next sequence
numbers, fills in ``sequenceNumber``, serializes, hashes, writes the WAL lines and fsyncs once
for the lot (group commit), and only then resolves the callers' futures: a caller who holds
an acknowledgement holds a durable record. ``seal`` moves the WAL's entries to an immutable
segment (spec audit §4.2.3). If a write fails, the trail is *degraded* and the server fails
closed (§2.7.3) until ``try_recover`` manages to write again. A record that cannot be serialized
is no failed write: it is recorded with markers in place of its non-JSON values, and never
fails the other records of its batch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from audit.chain import NOT_JSON_ERRORS, entry_hash, genesis, record_bytes
from audit.record import Account, service_event_record
from audit.redact import omit_not_json
from audit.segments import (
    FILE_MODE,
    Entry,
    entries_table,
    list_segments,
    make_dirs,
    project,
    segment_bounds,
    segment_path,
    username_of,
    write_segment,
)
from core.errors import Unavailable
from store.wal import fsync_path

log = logging.getLogger(__name__)

TRAIL_NAME = "default"


class AuditUnavailable(Unavailable):
    """Raised when the audit record of a request cannot be written: the request fails."""


class AuditCorrupt(RuntimeError):
    """Raised at start-up when the audit WAL does not continue the chain."""


@dataclass(frozen=True, slots=True)
class TrailConfig:
    root: Path  # <data_dir>/audit/<trail>
    account: Account
    name: str = TRAIL_NAME
    fsync: bool = True
    segment_max_events: int = 10_000
    segment_max_age_s: float = 300.0


@dataclass(slots=True)
class _Pending:
    record: dict[str, Any]
    future: Future[Entry] = field(default_factory=Future)


@dataclass(slots=True)
class _WalFile:
    path: Path
    first_seq: int
    fd: int = -1
    size: int = 0


class AuditTrail:
    def __init__(self, config: TrailConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self.trail_id = uuid.UUID(int=0)
        self._lock = threading.Lock()  # chain head, unsealed entries, WAL files
        self._seal_lock = threading.Lock()
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._closing = False
        self._thread: threading.Thread | None = None
        self._head_seq = 0
        self._head_hash = b""
        self._segments: list[Path] = []
        self._unsealed: list[Entry] = []
        self._sealing: list[Entry] = []
        self._sealed_files: list[_WalFile] = []
        self._wal: _WalFile | None = None
        self._oldest_unsealed_at: float | None = None
        self.degraded_since: float | None = None
        self.refused = 0
        self._last_probe = 0.0

    # ---- life cycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Load the trail identity, find the chain head, replay the WAL, start appending."""
        root = self.config.root
        for sub in ("wal", "segments", "state"):
            make_dirs(root / sub)
        self.trail_id = self._load_trail_id()
        self._head_seq, self._head_hash = 0, genesis(self.trail_id)
        self._segments = list_segments(root)
        if self._segments:
            self._head_seq, self._head_hash = _segment_head(self._segments[-1])
        discarded = self._replay_wal()
        self._start_wal(self._head_seq + 1)
        self._thread = threading.Thread(target=self._run, name="audit-commit", daemon=True)
        self._thread.start()
        if discarded:
            log.warning("audit WAL: discarded %d bytes of a torn tail", discarded)
            self.append_service_event("AuditWalRecovered", {"discardedBytes": discarded})

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
        try:
            self.seal(force=True)
        except OSError as exc:
            log.error("could not seal the audit WAL at shutdown (it stays in the WAL): %s", exc)
        with self._lock:
            if self._wal is not None and self._wal.fd >= 0:
                os.close(self._wal.fd)
                self._wal.fd = -1

    # ---- appending ---------------------------------------------------------------------------

    def append(self, record: dict[str, Any]) -> Future[Entry]:
        """Queue a record; the future resolves once it is durable (or fails)."""
        pending = _Pending(record)
        with self._cond:
            if self._closing:
                pending.future.set_exception(
                    AuditUnavailable("the server is shutting down; retry against the new process")
                )
                return pending.future
            self._queue.append(pending)
            self._cond.notify()
        return pending.future

    def append_service_event(self, name: str, details: dict[str, Any]) -> Entry:
        record = service_event_record(name, details, self.config.account)
        return self.append(record).result()

    @property
    def degraded(self) -> bool:
        return self.degraded_since is not None

    def try_recover(self) -> bool:
        """In degraded mode, try (at most once a second) to write the outage's record."""
        now = self._clock()
        if self.degraded_since is None:
            return True
        if now - self._last_probe < 1.0:
            return False
        self._last_probe = now
        started = self.degraded_since
        details = {
            "outageStart": datetime.fromtimestamp(started, UTC).isoformat(),
            "outageEnd": datetime.fromtimestamp(now, UTC).isoformat(),
            "refusedRequests": self.refused,
        }
        record = service_event_record("AuditDeliveryFailure", details, self.config.account)
        try:
            self.append(record).result()
        except Exception:  # still failing: stay degraded
            return False
        return self.degraded_since is None

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
            self._commit(batch)

    def _commit(self, batch: list[_Pending]) -> None:
        with self._lock:
            wal = self._wal
            assert wal is not None
            start_seq, start_hash, start_size = self._head_seq, self._head_hash, wal.size
            # Each record is serialized before the batch is written, and a record that cannot
            # be is settled alone (``_chain_checked``): only a failed write fails the batch.
            chained = [(p, e) for p in batch if (e := self._chain_checked(p)) is not None]
            batch = [pending for pending, _ in chained]
            entries = [entry for _, entry in chained]
            if not entries:
                return
            try:
                data = b"".join(entry.wal_line() + b"\n" for entry in entries)
                _write_all(wal.fd, data)
                wal.size += len(data)
                if self.config.fsync:
                    os.fdatasync(wal.fd)
            except OSError as exc:
                self._head_seq, self._head_hash = start_seq, start_hash
                self._abandon_wal(wal, start_size, start_seq + 1)
                self._fail(batch, exc)
                return
            self._unsealed.extend(entries)
            if self._oldest_unsealed_at is None:
                self._oldest_unsealed_at = self._clock()
            if self.degraded_since is not None:
                self.degraded_since = None
                self.refused = 0
        for pending, entry in zip(batch, entries, strict=True):
            pending.future.set_result(entry)

    def _chain_checked(self, pending: _Pending) -> Entry | None:
        """``_chain`` of the pending record; when it has no JSON form (a NaN or an infinity in
        a request's parameters, say), the record is chained with markers in place of those
        values, so the call stays in the trail with its true status. A record that still
        cannot be serialized fails alone, without degrading the trail: the disk is fine."""
        try:
            return self._chain(pending.record)
        except NOT_JSON_ERRORS:
            pass
        record, paths = omit_not_json(pending.record)
        watchkeep = record.setdefault("additionalEventData", {}).setdefault("watchkeep", {})
        watchkeep["redactedPaths"] = [*watchkeep.get("redactedPaths", []), *paths]
        try:
            entry = self._chain(record)
        except NOT_JSON_ERRORS as exc:
            log.error("an audit record cannot be serialized (%s): its request fails", exc)
            pending.future.set_exception(
                AuditUnavailable(
                    f"the audit record of this request cannot be serialized ({exc}); the "
                    "request was not performed in full"
                )
            )
            return None
        log.warning("an audit record held values that are not JSON, recorded as markers: %s", paths)
        return entry

    def _chain(self, record: dict[str, Any]) -> Entry:
        seq = self._head_seq + 1
        watchkeep = record.setdefault("additionalEventData", {}).setdefault("watchkeep", {})
        watchkeep["sequenceNumber"] = seq
        data = record_bytes(record)
        digest = hashlib.sha256(data).digest()
        current = entry_hash(self.trail_id, seq, self._head_hash, digest)
        entry = Entry(
            seq=seq,
            record_json=data,
            record_sha256=digest,
            prev_hash=self._head_hash,
            entry_hash=current,
            projection=project(record, username_of(record.get("userIdentity") or {})),
        )
        self._head_seq, self._head_hash = seq, current
        return entry

    def _fail(self, batch: list[_Pending], exc: Exception) -> None:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        log.error("audit trail write failed (%s): failing closed", reason)
        if self.degraded_since is None:
            self.degraded_since = self._clock()
        error = AuditUnavailable(
            f"audit trail unavailable ({reason}); the request was not performed in full, "
            "retry once the audit log is writable again",
            retry_after_s=5,
        )
        for pending in batch:
            pending.future.set_exception(error)

    # ---- sealing -----------------------------------------------------------------------------

    def seal_due(self) -> bool:
        with self._lock:
            if not self._unsealed:
                return False
            if len(self._unsealed) >= self.config.segment_max_events:
                return True
            started = self._oldest_unsealed_at or self._clock()
            return self._clock() - started >= self.config.segment_max_age_s

    def maybe_seal(self) -> Path | None:
        return self.seal() if self.seal_due() else None

    def seal(self, *, force: bool = False) -> Path | None:
        """Move every unsealed entry to a new segment; return its path (None if nothing)."""
        with self._seal_lock:
            with self._lock:
                if not self._unsealed:
                    return None
                entries, self._unsealed = self._unsealed, []
                self._sealing = entries
                self._oldest_unsealed_at = None
                old_files = [*self._sealed_files, self._wal] if self._wal else []
                self._sealed_files = []
                assert self._wal is not None
                old_fd = self._wal.fd
                self._start_wal(self._head_seq + 1)
            if old_fd >= 0:
                os.close(old_fd)
            try:
                path = self._write_segment(entries)
            except BaseException:
                with self._lock:  # keep them visible and retry at the next seal
                    self._unsealed = entries + self._unsealed
                    self._sealing = []
                    self._sealed_files = [f for f in old_files if f is not None]
                raise
            with self._lock:
                self._segments.append(path)
                self._sealing = []
            for wal in old_files:
                if wal is not None:
                    wal.path.unlink(missing_ok=True)
            return path

    def _write_segment(self, entries: list[Entry]) -> Path:
        sealed_at = datetime.fromtimestamp(self._clock(), UTC)
        path = segment_path(
            self.config.root, self.config.name, entries[0].seq, entries[-1].seq, sealed_at
        )
        metadata = {
            "trail_id": str(self.trail_id),
            "first_seq": str(entries[0].seq),
            "last_seq": str(entries[-1].seq),
            "first_prev_hash": entries[0].prev_hash.hex(),
            "last_entry_hash": entries[-1].entry_hash.hex(),
        }
        write_segment(path, entries_table(entries), metadata, fsync=self.config.fsync)
        return path

    # ---- reading -----------------------------------------------------------------------------

    def snapshot(self) -> tuple[list[Path], list[Entry]]:
        """The sealed segments and the entries not yet in one, for a consistent read."""
        with self._lock:
            return list(self._segments), [*self._sealing, *self._unsealed]

    def head(self) -> tuple[int, bytes]:
        with self._lock:
            return self._head_seq, self._head_hash

    def forget_segments(self, paths: list[Path]) -> None:
        """Stop reading ``paths`` (retention is about to delete them); never the newest."""
        with self._lock:
            keep = self._segments[-1:]
            self._segments = [p for p in self._segments if p not in paths or p in keep]

    # ---- internals ---------------------------------------------------------------------------

    def _load_trail_id(self) -> uuid.UUID:
        path = self.config.root / "state" / "trail.json"
        if path.exists():
            return uuid.UUID(orjson.loads(path.read_bytes())["trail_id"])
        trail_id = uuid.uuid4()
        temp = path.with_suffix(".tmp")
        temp.write_bytes(
            orjson.dumps({"trail_id": str(trail_id), "name": self.config.name, "created": _now()})
        )
        os.chmod(temp, FILE_MODE)
        fsync_path(temp)
        os.replace(temp, path)
        fsync_path(path.parent)
        return trail_id

    def _replay_wal(self) -> int:
        """Load unsealed entries from the WAL files; return the bytes discarded.

        A file's entries end where the next file begins: when a write failed, the writer
        moved on to a new file starting at the first unacknowledged sequence number, so
        anything after that point in the older file was never acknowledged.
        """
        files = sorted(
            (
                _WalFile(p, int(p.stem.split("-", 1)[1]))
                for p in (self.config.root / "wal").glob("wal-*.jsonl")
            ),
            key=lambda f: f.first_seq,
        )
        discarded = 0
        for index, wal in enumerate(files):
            limit = files[index + 1].first_seq if index + 1 < len(files) else None
            discarded += self._replay_file(wal, limit)
            if wal.path.exists():
                self._sealed_files.append(wal)
        if self._unsealed:
            self._oldest_unsealed_at = self._clock()
        return discarded

    def _replay_file(self, wal: _WalFile, limit: int | None) -> int:
        data = wal.path.read_bytes()
        offset = 0
        while offset < len(data):
            end = data.find(b"\n", offset)
            if end < 0:
                break
            try:
                line = orjson.loads(data[offset:end])
                seq = int(line["seq"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                break
            if limit is not None and seq >= limit:
                break
            if seq <= self._head_seq:  # sealed already (a crash came between seal steps)
                offset = end + 1
                continue
            entry = self._replayed_entry(line, wal.path)
            self._unsealed.append(entry)
            self._head_seq, self._head_hash = entry.seq, entry.entry_hash
            offset = end + 1
        if offset < len(data):
            with open(wal.path, "r+b") as handle:
                handle.truncate(offset)
                os.fsync(handle.fileno())
        return len(data) - offset

    def _replayed_entry(self, line: dict[str, Any], path: Path) -> Entry:
        seq = int(line["seq"])
        data = str(line["record"]).encode("utf-8")
        digest = hashlib.sha256(data).digest()
        expected = entry_hash(self.trail_id, seq, self._head_hash, digest)
        if seq != self._head_seq + 1 or expected.hex() != line.get("hash"):
            raise AuditCorrupt(
                f"the audit WAL {path} does not continue the hash chain at sequence number "
                f"{seq} (head is {self._head_seq}); run `watchkeep audit verify` and keep a copy "
                "of the data directory before moving the file away"
            )
        record = orjson.loads(data)
        return Entry(
            seq,
            data,
            digest,
            self._head_hash,
            expected,
            project(record, username_of(record.get("userIdentity") or {})),
        )

    def _start_wal(self, first_seq: int) -> None:
        path = self.config.root / "wal" / f"wal-{first_seq:012d}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
        size = os.fstat(fd).st_size
        if self.config.fsync:
            fsync_path(path.parent)
        self._wal = _WalFile(path, first_seq, fd, size)

    def _abandon_wal(self, wal: _WalFile, size: int, next_seq: int) -> None:
        """After a failed write: cut the file back and continue in a fresh one."""
        try:
            os.ftruncate(wal.fd, size)
        except OSError:
            pass  # replay ignores what follows in this file: the next one starts at next_seq
        try:
            self._start_wal(next_seq)
        except OSError as exc:
            log.error("could not start a new audit WAL file: %s", exc)
            return
        os.close(wal.fd)
        wal.fd = -1
        wal.size = size
        self._sealed_files.append(wal)


def _segment_head(path: Path) -> tuple[int, bytes]:
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    _first, last = segment_bounds(path)
    return last, bytes.fromhex(metadata[b"last_entry_hash"].decode())


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _now() -> str:
    return datetime.now(UTC).isoformat()


__all__ = ["AuditCorrupt", "AuditTrail", "AuditUnavailable", "TrailConfig"]
