"""``Idempotency-Key`` bookkeeping: a retried batch is acknowledged again, not stored twice.

Keys seen in the last 24 h map to the response first given; a key whose batch is still on its
way to the WAL maps to a future, so a concurrent retry waits for the first attempt's outcome.

A key only means something together with who sent it and where to: the log store scopes each
key by principal ARN, log group and stream (``ScopedKey``) and keeps a SHA-256 of the request
body with it, so the same key sent again with another body is refused
(``IdempotencyKeyConflict``) rather than acknowledged with nothing stored. A key without a body
hash would be matched on the key alone; keys saved before keys were scoped are loaded into a
scope of their own (``ScopedKey.legacy``) that no new request matches, so a retry that spans
the upgrade is stored again rather than matched across callers or groups. The metric store
scopes its keys by principal (``ScopedKey.for_metrics``) and persists the body hash inside the
key's identity (``metric_identity``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import orjson

from core.errors import IdempotencyKeyConflict

Response = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ScopedKey:
    """An ``Idempotency-Key`` in the scope it was sent in: the caller and the target stream.

    Keys saved before scoping existed (WAL records, catalog rows) belong to the legacy scope,
    whose empty principal, group and stream no request has, so they never match a new request.
    """

    principal: str
    group: str
    stream: str
    key: str

    @classmethod
    def legacy(cls, key: str) -> ScopedKey:
        return cls("", "", "", key)

    @classmethod
    def for_metrics(cls, principal: str, key: str) -> ScopedKey:
        """A PutMetricData key: scoped by the caller alone (a request names its namespace
        in the body, which the body hash already covers)."""
        return cls(principal, "", "", key)

    def metric_identity(self, body_sha256: str | None) -> str:
        """How the metric store persists a metric key with its body hash (WAL header, catalog
        row), so that both survive a flush and a restart."""
        return orjson.dumps([self.principal, self.key, body_sha256]).decode()

    @classmethod
    def from_metric_identity(cls, identity: str) -> tuple[ScopedKey, str | None]:
        """The inverse of ``metric_identity``; a plain string is a key saved before metric
        keys were scoped, which no new request matches."""
        if identity.startswith("["):
            try:
                principal, key, *digest = orjson.loads(identity)
                return cls.for_metrics(str(principal), str(key)), (digest or [None])[0]
            except (orjson.JSONDecodeError, ValueError):
                pass
        return cls.legacy(identity), None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A scoped key as it is persisted: in the WAL header, the memtable and the catalog."""

    scoped: ScopedKey
    body_sha256: str | None  # None for a key saved before bodies were hashed
    response_json: str

    def to_header(self) -> dict[str, str | None]:
        return {
            "key": self.scoped.key,
            "principal": self.scoped.principal,
            "group": self.scoped.group,
            "stream": self.scoped.stream,
            "body_sha256": self.body_sha256,
            "response": self.response_json,
        }

    @classmethod
    def from_header(cls, value: Any) -> KeyRecord:
        """Read a WAL header's ``idempotency`` entry, old (``[key, response]``) or new."""
        if isinstance(value, dict):
            scoped = ScopedKey(value["principal"], value["group"], value["stream"], value["key"])
            return cls(scoped, value.get("body_sha256"), value["response"])
        return cls(ScopedKey.legacy(value[0]), None, value[1])

    def pack(self, seen_ms: int) -> tuple[str, str, int]:
        """The ``(identity, response JSON, seen_ms)`` triple a memtable batch carries until
        its flush saves it to the catalog: the scope and the body hash ride in the first."""
        s = self.scoped
        identity = orjson.dumps([s.principal, s.group, s.stream, s.key, self.body_sha256])
        return identity.decode(), self.response_json, seen_ms

    @classmethod
    def unpack(cls, packed: tuple[str, str, int]) -> tuple[KeyRecord, int]:
        principal, group, stream, key, body_sha256 = orjson.loads(packed[0])
        return cls(ScopedKey(principal, group, stream, key), body_sha256, packed[1]), packed[2]


def body_sha256(body: bytes | memoryview) -> str:
    """The hash a request body is compared by when its ``Idempotency-Key`` comes again."""
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True)
class _Seen:
    response_json: str
    seen_ms: int
    body_sha256: str | None


class IdempotencyKeys:
    """Keys are any hashable value; both stores use ``ScopedKey``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[Hashable, _Seen] = {}
        self._inflight: dict[Hashable, tuple[str | None, Future[Response]]] = {}

    def remember(
        self, key: Hashable, response_json: str, seen_ms: int, body_sha256: str | None = None
    ) -> None:
        with self._lock:
            self._seen[key] = _Seen(response_json, seen_ms, body_sha256)

    def prune(self, before_ms: int) -> None:
        """Forget keys first seen before ``before_ms``: a retry after the window stores again."""
        with self._lock:
            self._seen = {k: v for k, v in self._seen.items() if v.seen_ms >= before_ms}

    def claim(self, key: Hashable, body_sha256: str | None = None) -> Future[Response] | None:
        """None if the caller should store the batch; else a future of the earlier answer.

        Raises ``IdempotencyKeyConflict`` when the key is known with another body hash.
        """
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None:
                _check_same_body(key, seen.body_sha256, body_sha256)
                done: Future[Response] = Future()
                done.set_result({**orjson.loads(seen.response_json), "duplicate": True})
                return done
            running = self._inflight.get(key)
            if running is not None:
                _check_same_body(key, running[0], body_sha256)
                return running[1]
            self._inflight[key] = (body_sha256, Future())
        return None

    def once(
        self,
        key: Hashable,
        body_sha256: str | None,
        submit: Callable[[], Future[Response]],
    ) -> Future[Response]:
        """``submit`` the batch unless ``key`` claims an earlier answer (``claim``), and
        settle or release the key with the outcome."""
        replay = self.claim(key, body_sha256)
        if replay is not None:
            return replay
        try:
            future = submit()
        except BaseException as exc:
            self.release(key, exc)
            raise
        future.add_done_callback(lambda f: self.settle(key, f))
        return future

    def settle(self, key: Hashable, outcome: Future[Response]) -> None:
        """The claimed batch is acknowledged (or failed): answer whoever waited on the key."""
        with self._lock:
            running = self._inflight.pop(key, None)
        if running is None:
            return
        waiter = running[1]
        error = outcome.exception()
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result({**outcome.result(), "duplicate": True})

    def release(self, key: Hashable, error: BaseException) -> None:
        """The claimed batch never reached the WAL."""
        with self._lock:
            running = self._inflight.pop(key, None)
        if running is not None:
            running[1].set_exception(error)


def _check_same_body(key: Hashable, known: str | None, given: str | None) -> None:
    if known is None or given is None or known == given:
        return
    if isinstance(key, ScopedKey) and not key.group:
        where, details = "", {"idempotency_key": key.key}
    elif isinstance(key, ScopedKey):
        where = f" to log group {key.group!r}, stream {key.stream!r}"
        details = {"idempotency_key": key.key, "group": key.group, "stream": key.stream}
    else:
        where, details = "", {"idempotency_key": str(key)}
    raise IdempotencyKeyConflict(
        f"Idempotency-Key {details['idempotency_key']!r} was already used{where} for a "
        "request with a different body; resend the original body to retry that request, "
        "or use a new key for a new batch",
        details=details,
    )
