"""LookupEvents (spec audit §3.2): one optional attribute, a time range, newest first, and
HMAC-signed page tokens that resume strictly after the last record returned.

The search runs in DuckDB over the sealed segments plus the unsealed tail held in memory, so
a record is found as soon as its request has been answered.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import orjson

from audit.record import resource_type_and_name
from audit.segments import entries_table, segment_sealed_at, username_of
from audit.trail import AuditTrail
from core.errors import BadRequest, Throttled

MAX_RESULTS = 50
MAX_VALUE_LENGTH = 2000
TOKEN_TTL_S = 24 * 3600

# LookupAttribute key -> (column, SQL predicate on it)
_ATTRIBUTES = {
    "EventId": "event_id = ?",
    "EventName": "event_name = ?",
    "EventSource": "event_source = ?",
    "ReadOnly": "read_only = ?",
    "Username": "user_name = ?",
    "AccessKeyId": "access_key_id = ?",
    "ResourceType": "list_contains(resource_types, ?)",
    "ResourceName": "list_contains(resource_names, ?)",
}


class LookupRejected(BadRequest):
    """A LookupEvents validation error; ``code`` is the CloudTrail exception name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class LookupRequest:
    key: str | None = None
    value: str | None = None
    start_s: int | None = None
    end_s: int | None = None
    max_results: int = MAX_RESULTS
    next_token: str | None = None
    event_category: str | None = None
    # The times as the caller wrote them ("-1h", "now"): the token is bound to these, since a
    # relative time resolves a little later on every page.
    start_text: str | None = None
    end_text: str | None = None

    def fingerprint(self) -> str:
        """First 16 hex of the SHA-256 of the request minus its token (the token's ``q``)."""
        start = self.start_text if self.start_text is not None else self.start_s
        end = self.end_text if self.end_text is not None else self.end_s
        canonical = orjson.dumps(
            [self.key, self.value, start, end, self.max_results, self.event_category]
        )
        return hashlib.sha256(canonical).hexdigest()[:16]


def validate(request: LookupRequest) -> None:
    if (request.key is None) != (request.value is None):
        raise LookupRejected(
            "InvalidLookupAttributesException",
            "pass lookup_key and lookup_value together (one attribute at most)",
        )
    if request.key is not None and request.value is not None:
        if request.key not in _ATTRIBUTES:
            raise LookupRejected(
                "InvalidLookupAttributesException",
                f"unknown lookup_key {request.key!r}: use one of {', '.join(_ATTRIBUTES)}",
            )
        if not 1 <= _counted_length(request.value) <= MAX_VALUE_LENGTH:
            raise LookupRejected(
                "InvalidLookupAttributesException",
                f"lookup_value must be 1-{MAX_VALUE_LENGTH} characters "
                "('_', space, ',' and newline count twice)",
            )
        if request.key == "ReadOnly" and request.value not in ("true", "false"):
            raise LookupRejected(
                "InvalidLookupAttributesException",
                f"lookup_value for ReadOnly must be 'true' or 'false', not {request.value!r}",
            )
    if not 1 <= request.max_results <= MAX_RESULTS:
        raise LookupRejected(
            "InvalidMaxResultsException",
            f"max_results must be between 1 and {MAX_RESULTS}, not {request.max_results}",
        )
    if (
        request.start_s is not None
        and request.end_s is not None
        and request.start_s > request.end_s
    ):
        raise LookupRejected(
            "InvalidTimeRangeException", "start is after end: the time range is empty"
        )
    if request.event_category is not None and request.event_category != "insight":
        raise LookupRejected(
            "InvalidEventCategoryException",
            f"event_category must be 'insight', not {request.event_category!r}",
        )


def _counted_length(value: str) -> int:
    return len(value) + sum(value.count(c) for c in ("_", " ", ",", "\n"))


class TokenCodec:
    """``base64url(payload) "." base64url(HMAC-SHA256(key, payload))[:22]``."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encode(self, fingerprint: str, event_time_s: int, seq: int, now_s: int) -> str:
        payload = orjson.dumps(
            {"v": 1, "q": fingerprint, "t": event_time_s, "s": seq, "x": now_s + TOKEN_TTL_S}
        )
        return f"{_b64(payload)}.{self._mac(payload)}"

    def decode(self, token: str, fingerprint: str, now_s: int) -> tuple[int, int]:
        """``(event time, sequence number)`` of the last record of the previous page."""
        body, _, mac = token.partition(".")
        try:
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            payload = b""
        if not payload or not hmac.compare_digest(mac, self._mac(payload)):
            raise _bad_token("it was not issued by this server or was altered")
        fields = orjson.loads(payload)
        if fields.get("q") != fingerprint:
            raise _bad_token("it was issued for a request with other parameters")
        if int(fields.get("x", 0)) < now_s:
            raise _bad_token("it has expired (tokens last 24 hours)")
        return int(fields["t"]), int(fields["s"])

    def _mac(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest())[:22]


def _bad_token(why: str) -> LookupRejected:
    return LookupRejected("InvalidNextTokenException", f"invalid next_token: {why}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class RateLimiter:
    """A token bucket per principal: ``rate`` calls per second, bursts of ``rate``."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, principal: str) -> None:
        if self._rate <= 0:
            return
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(principal, (self._rate, now))
            tokens = min(self._rate, tokens + (now - last) * self._rate)
            if tokens < 1:
                self._buckets[principal] = (tokens, now)
                raise Throttled(
                    f"LookupEvents is limited to {self._rate:g} calls per second per principal; "
                    "slow down",
                    retry_after_s=1,
                )
            self._buckets[principal] = (tokens - 1, now)


@dataclass(frozen=True, slots=True)
class LookupPage:
    events: list[dict[str, Any]]
    next_token: str | None


class EventLookup:
    def __init__(
        self,
        trail: AuditTrail,
        connect: Callable[[], duckdb.DuckDBPyConnection],
        token_key: bytes,
        *,
        window_days: int = 90,
    ) -> None:
        self._trail = trail
        self._connect = connect
        self._tokens = TokenCodec(token_key)
        self._window = timedelta(days=window_days)

    def lookup(self, request: LookupRequest, *, now_s: int | None = None) -> LookupPage:
        validate(request)
        now_s = int(time.time()) if now_s is None else now_s
        fingerprint = request.fingerprint()
        after = None
        if request.next_token is not None:
            after = self._tokens.decode(request.next_token, fingerprint, now_s)
        if request.event_category == "insight":
            return LookupPage([], None)
        floor = datetime.fromtimestamp(now_s, UTC) - self._window
        start = _at(request.start_s) or floor
        start = max(start, floor)
        end = _at(request.end_s) or datetime.fromtimestamp(now_s, UTC)
        if end < start:
            return LookupPage([], None)
        rows = self._query(request, start, end, after)
        more = len(rows) > request.max_results
        rows = rows[: request.max_results]
        token = None
        if more and rows:
            last = rows[-1]
            token = self._tokens.encode(fingerprint, last[1], last[0], now_s)
        return LookupPage([_event(row) for row in rows], token)

    def _query(
        self,
        request: LookupRequest,
        start: datetime,
        end: datetime,
        after: tuple[int, int] | None,
    ) -> list[tuple[Any, ...]]:
        segments, unsealed = self._trail.snapshot()
        # A segment sealed before the range starts holds only older records.
        files = [str(p) for p in segments if segment_sealed_at(p) >= start - timedelta(seconds=1)]
        columns = (
            "seq, event_time, record_json, event_id, event_name, event_source, "
            "user_name, access_key_id, read_only, resource_names, resource_types"
        )
        parts, params = [], []
        if files:
            parts.append(f"SELECT {columns} FROM read_parquet(?, hive_partitioning = false)")
            params.append(files)
        parts.append(f"SELECT {columns} FROM wk_audit_tail")
        where = ["event_time >= ?", "event_time <= ?"]
        filters: list[Any] = [start, end]
        if request.key is not None:
            where.append(_ATTRIBUTES[request.key])
            value: Any = request.value == "true" if request.key == "ReadOnly" else request.value
            filters.append(value)
        if after is not None:
            t = datetime.fromtimestamp(after[0], UTC)
            where.append("(event_time < ? OR (event_time = ? AND seq < ?))")
            filters += [t, t, after[1]]
        sql = (
            f"SELECT seq, epoch(event_time)::BIGINT, record_json FROM "
            f"({' UNION ALL '.join(parts)}) WHERE {' AND '.join(where)} "
            "ORDER BY event_time DESC, seq DESC LIMIT ?"
        )
        cursor = self._connect()
        try:
            cursor.register("wk_audit_tail", entries_table(unsealed))
            return cursor.execute(sql, [*params, *filters, request.max_results + 1]).fetchall()
        finally:
            cursor.close()


def _at(epoch_s: int | None) -> datetime | None:
    return None if epoch_s is None else datetime.fromtimestamp(epoch_s, UTC)


def _event(row: tuple[Any, ...]) -> dict[str, Any]:
    _seq, _t, record_json = row
    record = orjson.loads(record_json)
    identity = record.get("userIdentity") or {}
    resources = []
    for resource in record.get("resources") or []:
        kind, name = resource_type_and_name(resource["ARN"])
        resources.append({"resource_type": kind, "resource_name": name})

    return {
        "event_id": record["eventID"],
        "event_name": record["eventName"],
        "event_time": record["eventTime"],
        "event_source": record["eventSource"],
        "username": username_of(identity),
        "access_key_id": identity.get("accessKeyId"),
        "read_only": "true" if record.get("readOnly") else "false",
        "resources": resources,
        "cloudtrail_event": record_json,
    }
