"""Group commit: one thread writes the WAL, and many concurrent appends share one fsync.

Callers hand in ``PendingAppend``s and get a ``concurrent.futures.Future``. The commit thread
takes everything queued, frames it, writes it with one ``writev`` per record and one
``fdatasync`` for the lot, calls ``on_durable`` (which puts the batches in the memtable, in WAL
order), and only then resolves the futures: an acknowledged append is on disk and readable.

A group commit that fails part-way (a full disk, an fsync error) fails every caller in it, and
the file is cut back to where the last successful fsync left it: records of a refused batch that
reached the file must never come back at replay, or a client's retry would store them twice.
Until that cut has been made nothing more is appended to the file.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import StorageFull
from store.layout import wal_path
from store.wal import WalFile, encode_record

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PendingAppend:
    """One batch on its way to the WAL. ``prepare`` runs on the commit thread, in WAL order,
    and returns the record header (it is where sequence numbers are assigned)."""

    prepare: Callable[[], dict[str, Any]]
    payload: Any  # any buffer: bytes, memoryview, pyarrow.Buffer
    context: Any = None  # whatever on_durable needs besides the header
    future: Future[Any] = field(default_factory=Future)
    header: dict[str, Any] | None = None


class CommitLog:
    def __init__(
        self,
        data_dir: Path,
        *,
        first_generation: int,
        closed_files: list[Path],
        on_durable: Callable[[list[PendingAppend]], list[Any]],
        fsync: bool = True,
    ) -> None:
        self._data_dir = data_dir
        self._fsync = fsync
        self._on_durable = on_durable
        self._generation = first_generation
        self._file = WalFile(wal_path(data_dir, first_generation), fsync=fsync)
        # True while the file may hold unacknowledged bytes past its last fsync.
        self._unclean = False
        self._closed: list[Path] = list(closed_files)
        self._closed_bytes = sum(p.stat().st_size for p in closed_files)
        self._file_lock = threading.Lock()
        self._cond = threading.Condition()
        self._queue: list[PendingAppend] = []
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="wal-commit", daemon=True)
        self._thread.start()

    @property
    def size_bytes(self) -> int:
        """Bytes in all WAL files that a flush has not yet made redundant."""
        return self._closed_bytes + self._file.size

    def submit(self, pending: PendingAppend) -> Future[Any]:
        with self._cond:
            if self._closing:
                raise StorageFull("the server is shutting down; retry against the new process")
            self._queue.append(pending)
            self._cond.notify()
        return pending.future

    def rotate(self) -> list[Path]:
        """Start a new WAL file; return every closed file, all of whose records are now in
        the memtable (the caller deletes them once those are flushed)."""
        with self._file_lock:
            if not self._closing and self._clean_quietly():
                self._switch_file()
            return list(self._closed)

    def forget(self, paths: list[Path]) -> None:
        """Delete closed WAL files whose records are all in Parquet."""
        with self._file_lock:
            for path in paths:
                if path in self._closed:
                    self._closed_bytes -= path.stat().st_size
                    self._closed.remove(path)
                    path.unlink(missing_ok=True)

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        with self._file_lock:
            self._clean_quietly()
            self._file.close()
            self._closed.append(self._file.path)
            self._closed_bytes += self._file.size

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
            self._commit(batch)

    def _commit(self, batch: list[PendingAppend]) -> None:
        with self._file_lock:
            try:
                if self._unclean:
                    self._clean()
                for pending in batch:
                    pending.header = pending.prepare()
                    self._file.append(encode_record(pending.header, pending.payload))
                self._file.sync()
            except OSError as exc:
                log.error("WAL write to %s failed: %s", self._file.path, exc)
                error = StorageFull(
                    f"could not write the write-ahead log {self._file.path} ({exc.strerror}); "
                    "free disk space or fix the data directory, then retry",
                    retry_after_s=5,
                )
                # Whatever part of the batch reached the file is after the last fsync'd
                # record and was never acknowledged: cut it off (or retry the cut before
                # the next write) so that replay cannot bring it back.
                self._unclean = True
                self._clean_quietly()
                for pending in batch:
                    pending.future.set_exception(error)
                return
            try:
                results = self._on_durable(batch)
            except Exception as exc:  # the memtable must never fail silently
                log.exception("applying durable WAL records failed")
                for pending in batch:
                    pending.future.set_exception(exc)
                return
        for pending, result in zip(batch, results, strict=True):
            pending.future.set_result(result)

    def _clean(self) -> None:
        self._file.rollback()
        self._unclean = False

    def _clean_quietly(self) -> bool:
        """Cut unacknowledged bytes off the file if a commit failed; False if that failed."""
        if not self._unclean:
            return True
        try:
            self._clean()
        except OSError as exc:
            log.error("could not cut %s back to its last fsync: %s", self._file.path, exc)
            return False
        return True

    def _switch_file(self) -> None:
        if self._file.size == 0:
            return
        # Open the next file before closing this one, so a failure leaves a usable file.
        new_file = WalFile(wal_path(self._data_dir, self._generation + 1), fsync=self._fsync)
        self._generation += 1
        self._file.close()
        self._closed.append(self._file.path)
        self._closed_bytes += self._file.path.stat().st_size
        self._file = new_file
