"""The state the log store's parts share, and the few helpers all of them use.

``StoreState`` is the base of ``store.engine.Store`` and of its parts (``store.log_writes``,
``store.log_reads``, ``store.log_upkeep``): it owns the attributes, the locks and the lookups,
so that each part is a module with one reason to change.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable

import duckdb

from core.errors import NotFound, Unavailable
from store import catalog
from store.commit import CommitLog
from store.config import StoreConfig
from store.fields import FieldPromoter
from store.idempotency import IdempotencyKeys
from store.lake import Lake
from store.layout import group_dir
from store.memtable import Memtable
from store.totals import SegmentTotals

__all__ = ["StoreState"]


class _GroupState:
    """What the hot path needs to know about a group, kept in memory."""

    def __init__(self, row: catalog.LogGroup, promoted: set[str], limit: int) -> None:
        self.row = row
        self.lock = threading.Lock()
        self.promoter = FieldPromoter(promoted, limit=limit)
        self.streams: set[str] = set()
        self.next_seq = row.flushed_seq + 1


class StoreState:
    """The store's attributes and shared helpers; see ``store.engine.Store``."""

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

    def _check_ready(self) -> None:
        if not self.ready:
            raise Unavailable("the store is starting (replaying the write-ahead log); retry soon")

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

    def _state(self, name: str) -> _GroupState:
        state = self._groups.get(name)
        if state is None:
            raise NotFound(f"log group {name!r} does not exist", details={"group": name})
        return state

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
