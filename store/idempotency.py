"""``Idempotency-Key`` bookkeeping: a retried batch is acknowledged again, not stored twice.

Keys seen in the last 24 h map to the response first given; a key whose batch is still on its
way to the WAL maps to a future, so a concurrent retry waits for the first attempt's outcome.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

import orjson

Response = dict[str, Any]


class IdempotencyKeys:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[str, int]] = {}  # key -> (response JSON, seen_ms)
        self._inflight: dict[str, Future[Response]] = {}

    def remember(self, key: str, response_json: str, seen_ms: int) -> None:
        with self._lock:
            self._seen[key] = (response_json, seen_ms)

    def prune(self, before_ms: int) -> None:
        """Forget keys first seen before ``before_ms``: a retry after the window stores again."""
        with self._lock:
            self._seen = {k: v for k, v in self._seen.items() if v[1] >= before_ms}

    def claim(self, key: str) -> Future[Response] | None:
        """None if the caller should store the batch; else a future of the earlier answer."""
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None:
                done: Future[Response] = Future()
                done.set_result({**orjson.loads(seen[0]), "duplicate": True})
                return done
            running = self._inflight.get(key)
            if running is not None:
                return running
            self._inflight[key] = Future()
        return None

    def settle(self, key: str, outcome: Future[Response]) -> None:
        """The claimed batch is acknowledged (or failed): answer whoever waited on the key."""
        with self._lock:
            waiter = self._inflight.pop(key, None)
        if waiter is None:
            return
        error = outcome.exception()
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result({**outcome.result(), "duplicate": True})

    def release(self, key: str, error: BaseException) -> None:
        """The claimed batch never reached the WAL."""
        with self._lock:
            waiter = self._inflight.pop(key, None)
        if waiter is not None:
            waiter.set_exception(error)
