"""The persistent webhook outbox (spec §6.4 "Guarantees") in the DuckDB catalog.

A delivery is written here, committed, before its first attempt, so that it survives a restart:
the delivery id, the body bytes and the attempt counter all live in the row. The body is
serialised once, at enqueue, so every retry sends identical bytes. Deliveries of one
(target, alarm) pair are attempted in transition order: ``due`` hands out only the oldest pending
delivery of each pair, and the next one waits until it is delivered, dead or cancelled.

No HTTP here; ``alarms.notify`` attempts what ``due`` returns and records the result.
"""

from __future__ import annotations

import builtins
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import duckdb
import orjson

from alarms.webhook import EVENTS
from core.errors import Conflict, NotFound

__all__ = ["OUTBOX_DDL", "Delivery", "DeliveryStateConflict", "Outbox", "Status"]

Status = Literal["pending", "delivered", "dead", "cancelled"]
STATUSES: tuple[Status, ...] = ("pending", "delivered", "dead", "cancelled")

OUTBOX_DDL = (
    "CREATE SEQUENCE IF NOT EXISTS alarm_outbox_seq",
    """
    CREATE TABLE IF NOT EXISTS alarm_outbox (
        delivery_id VARCHAR PRIMARY KEY,
        seq BIGINT NOT NULL,                -- global, in transition (enqueue) order
        target VARCHAR NOT NULL,
        alarm VARCHAR NOT NULL,
        event VARCHAR NOT NULL,
        body VARCHAR NOT NULL,              -- the exact JSON bytes sent on every attempt
        created_ms BIGINT NOT NULL,         -- the transition; the retry deadline counts from it
        attempts INTEGER NOT NULL,
        next_attempt_ms BIGINT NOT NULL,
        status VARCHAR NOT NULL,
        last_status_code INTEGER,
        last_error VARCHAR,
        updated_ms BIGINT NOT NULL
    )
    """,
)
_COLUMNS = (
    "delivery_id, seq, target, alarm, event, body, created_ms, attempts, next_attempt_ms, "
    "status, last_status_code, last_error, updated_ms"
)
_HEADS = f"""
    WITH heads AS (
        SELECT {_COLUMNS},
               row_number() OVER (PARTITION BY target, alarm ORDER BY seq) AS position
        FROM alarm_outbox WHERE status = 'pending'
    )
"""


class DeliveryStateConflict(Conflict):
    """Raised when a delivery is asked for a change its status does not allow (replay of a
    delivery that is not dead, cancelling one that is no longer pending)."""

    code = "DeliveryStateConflict"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One row of the outbox; ``body`` is the JSON text exactly as it is sent."""

    delivery_id: str
    seq: int
    target: str
    alarm: str
    event: str
    body: str
    created_ms: int
    attempts: int
    next_attempt_ms: int
    status: Status
    last_status_code: int | None
    last_error: str | None
    updated_ms: int

    @property
    def body_bytes(self) -> bytes:
        return self.body.encode("utf-8")

    def to_json(self) -> dict[str, Any]:
        """The API view: the row with the body as an object. Targets' secrets are never here."""
        return {
            "delivery_id": self.delivery_id,
            "seq": self.seq,
            "target": self.target,
            "alarm": self.alarm,
            "event": self.event,
            "status": self.status,
            "attempts": self.attempts,
            "created_ms": self.created_ms,
            "next_attempt_ms": self.next_attempt_ms if self.status == "pending" else None,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "updated_ms": self.updated_ms,
            "body": orjson.loads(self.body),
        }


def _delivery(row: tuple[Any, ...]) -> Delivery:
    return Delivery(*row[:13])


class Outbox:
    """The outbox table, through a factory of per-thread DuckDB cursors.

    ``cursor()`` must return a new cursor each call (``Store.cursor``): the outbox closes every
    cursor after use, so handing it the root connection itself would close the database.
    Writes are serialised by one lock so that the engine's enqueues and the notifier's worker
    threads never meet in a DuckDB write-write conflict.
    """

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self._cursor = cursor
        self._write_lock = threading.Lock()

    def ensure_schema(self) -> None:
        with self._write_lock, self._cursor() as cur:
            for statement in OUTBOX_DDL:
                cur.execute(statement)

    def enqueue(
        self, target: str, alarm: str, event: str, body: Mapping[str, Any], now_ms: int
    ) -> Delivery:
        """Store a new pending delivery due now; committed when this returns.

        The envelope fields ``version`` (default "1"), ``delivery_id`` and ``event`` are set
        here and lead the body; the rest of ``body`` follows in its own order.
        """
        with self.transaction() as cur:
            return self.enqueue_in(cur, target, alarm, event, body, now_ms)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction on one cursor, under the outbox's write lock: the alarm engine
        writes a round's deliveries, states and history in it, all or nothing."""
        with self._write_lock, self._cursor() as cur:
            cur.begin()
            try:
                yield cur
            except BaseException:
                cur.rollback()
                raise
            cur.commit()

    def enqueue_in(
        self,
        cur: duckdb.DuckDBPyConnection,
        target: str,
        alarm: str,
        event: str,
        body: Mapping[str, Any],
        now_ms: int,
    ) -> Delivery:
        """``enqueue`` inside a ``transaction`` the caller holds."""
        if event not in EVENTS:
            raise ValueError(f"unknown webhook event {event!r}; expected one of {EVENTS}")
        delivery_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "version": body.get("version", "1"),
            "delivery_id": delivery_id,
            "event": event,
        }
        envelope.update({k: v for k, v in body.items() if k not in envelope})
        text = orjson.dumps(envelope).decode("utf-8")
        row = cur.execute(
            f"INSERT INTO alarm_outbox VALUES "
            f"(?, nextval('alarm_outbox_seq'), ?, ?, ?, ?, ?, 0, ?, 'pending', NULL, NULL, ?) "
            f"RETURNING {_COLUMNS}",
            [delivery_id, target, alarm, event, text, now_ms, now_ms, now_ms],
        ).fetchone()
        assert row is not None
        return _delivery(row)

    def due(self, now_ms: int, limit: int = 100) -> builtins.list[Delivery]:
        """The oldest pending delivery of each (target, alarm) pair, if its time has come."""
        with self._cursor() as cur:
            rows = cur.execute(
                f"{_HEADS} SELECT * FROM heads WHERE position = 1 AND next_attempt_ms <= ? "
                "ORDER BY next_attempt_ms, seq LIMIT ?",
                [now_ms, limit],
            ).fetchall()
        return [_delivery(row) for row in rows]

    def next_attempt_ms(self) -> int | None:
        """When the earliest head of a pair falls due (maybe in the past); None if none pending."""
        with self._cursor() as cur:
            row = cur.execute(
                f"{_HEADS} SELECT min(next_attempt_ms) FROM heads WHERE position = 1"
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def get(self, delivery_id: str) -> Delivery:
        with self._cursor() as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM alarm_outbox WHERE delivery_id = ?", [delivery_id]
            ).fetchone()
        if row is None:
            raise NotFound(
                f"no webhook delivery with id {delivery_id!r}",
                details={"delivery_id": delivery_id},
            )
        return _delivery(row)

    def list(
        self,
        status: Status | None = None,
        target: str | None = None,
        alarm: str | None = None,
        limit: int = 100,
    ) -> builtins.list[Delivery]:
        """Deliveries matching every given filter, newest first."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown delivery status {status!r}; expected one of {STATUSES}")
        with self._cursor() as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM alarm_outbox "
                "WHERE (? IS NULL OR status = ?) AND (? IS NULL OR target = ?) "
                "AND (? IS NULL OR alarm = ?) ORDER BY seq DESC LIMIT ?",
                [status, status, target, target, alarm, alarm, limit],
            ).fetchall()
        return [_delivery(row) for row in rows]

    def record_failure(
        self,
        delivery_id: str,
        *,
        attempts: int,
        next_attempt_ms: int,
        status_code: int | None,
        error: str,
        now_ms: int,
    ) -> Delivery | None:
        """A failed attempt that will be retried at ``next_attempt_ms``; None if not pending."""
        return self._update_pending(
            delivery_id,
            "attempts = ?, next_attempt_ms = ?, last_status_code = ?, last_error = ?, "
            "updated_ms = ?",
            [attempts, next_attempt_ms, status_code, error, now_ms],
        )

    def mark_delivered(
        self, delivery_id: str, *, attempts: int, status_code: int, now_ms: int
    ) -> Delivery | None:
        """A 2xx answer; None if the delivery was no longer pending (cancelled meanwhile)."""
        return self._update_pending(
            delivery_id,
            "status = 'delivered', attempts = ?, last_status_code = ?, last_error = NULL, "
            "updated_ms = ?",
            [attempts, status_code, now_ms],
        )

    def mark_dead(
        self,
        delivery_id: str,
        *,
        attempts: int,
        status_code: int | None,
        error: str,
        now_ms: int,
    ) -> Delivery | None:
        """Delivery given up; the row stays for inspection and ``replay``."""
        return self._update_pending(
            delivery_id,
            "status = 'dead', attempts = ?, last_status_code = ?, last_error = ?, updated_ms = ?",
            [attempts, status_code, error, now_ms],
        )

    def cancel(self, delivery_id: str, now_ms: int) -> Delivery:
        """Drop a pending delivery without sending it; later ones of its pair move up."""
        updated = self._update_pending(
            delivery_id, "status = 'cancelled', updated_ms = ?", [now_ms]
        )
        if updated is None:
            current = self.get(delivery_id)
            raise DeliveryStateConflict(
                f"delivery {delivery_id} is {current.status}; only a pending delivery can be "
                "cancelled",
                details={"delivery_id": delivery_id, "status": current.status},
            )
        return updated

    def replay(self, delivery_id: str, now_ms: int) -> Delivery:
        """Send a dead delivery again: same id and body, attempts from 1, a fresh deadline.

        It takes a new ``seq``, so it queues behind deliveries already pending for its pair
        rather than jumping ahead of them.
        """
        with self._write_lock, self._cursor() as cur:
            row = cur.execute(
                "UPDATE alarm_outbox SET status = 'pending', seq = nextval('alarm_outbox_seq'), "
                "attempts = 0, created_ms = ?, next_attempt_ms = ?, last_status_code = NULL, "
                "last_error = NULL, updated_ms = ? "
                f"WHERE delivery_id = ? AND status = 'dead' RETURNING {_COLUMNS}",
                [now_ms, now_ms, now_ms, delivery_id],
            ).fetchone()
        if row is not None:
            return _delivery(row)
        current = self.get(delivery_id)
        raise DeliveryStateConflict(
            f"delivery {delivery_id} is {current.status}; only a dead delivery can be replayed",
            details={"delivery_id": delivery_id, "status": current.status},
        )

    def purge(self, older_than_ms: int, *, dead_older_than_ms: int | None = None) -> int:
        """Delete delivered and cancelled rows last changed before ``older_than_ms``, and dead
        ones (kept longer, for inspection and replay) before ``dead_older_than_ms`` if given."""
        dead_before = -1 if dead_older_than_ms is None else dead_older_than_ms
        with self._write_lock, self._cursor() as cur:
            rows = cur.execute(
                "DELETE FROM alarm_outbox WHERE (status IN ('delivered', 'cancelled') "
                "AND updated_ms < ?) OR (status = 'dead' AND updated_ms < ?) "
                "RETURNING delivery_id",
                [older_than_ms, dead_before],
            ).fetchall()
        return len(rows)

    def _update_pending(
        self, delivery_id: str, assignments: str, params: builtins.list[Any]
    ) -> Delivery | None:
        with self._write_lock, self._cursor() as cur:
            row = cur.execute(
                f"UPDATE alarm_outbox SET {assignments} "
                f"WHERE delivery_id = ? AND status = 'pending' RETURNING {_COLUMNS}",
                [*params, delivery_id],
            ).fetchone()
        return None if row is None else _delivery(row)
