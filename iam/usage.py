"""When each access key was last used, for what and from where (spec audit §7.2).

The request path only notes the use in memory (a dict write); a scheduled job persists the
latest use per key in one batch, so tracking costs no database write per request. Readers
merge what is pending with what is stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import duckdb

USAGE_DDL = """
CREATE TABLE IF NOT EXISTS access_key_usage (
    access_key_id VARCHAR PRIMARY KEY,
    last_used_ms BIGINT NOT NULL,
    operation VARCHAR NOT NULL,
    source_ip VARCHAR NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class KeyUse:
    last_used_ms: int
    operation: str
    source_ip: str


class KeyUsage:
    def __init__(self, connect: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self._pending: dict[str, KeyUse] = {}

    def ensure_schema(self) -> None:
        with self._connect() as conn:
            conn.execute(USAGE_DDL)

    def note(self, access_key_id: str, operation: str, source_ip: str, now_ms: int) -> None:
        with self._lock:
            self._pending[access_key_id] = KeyUse(now_ms, operation, source_ip)

    def flush(self) -> int:
        """Store the pending uses; return how many keys were updated."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        rows = [[k, u.last_used_ms, u.operation, u.source_ip] for k, u in pending.items()]
        with self._connect() as conn:
            conn.executemany("INSERT OR REPLACE INTO access_key_usage VALUES (?, ?, ?, ?)", rows)
        return len(rows)

    def last_uses(self) -> dict[str, KeyUse]:
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM access_key_usage").fetchall()
        uses = {key: KeyUse(ms, op, ip) for key, ms, op, ip in rows}
        with self._lock:
            uses.update(self._pending)
        return uses

    def forget(self, access_key_id: str) -> None:
        with self._lock:
            self._pending.pop(access_key_id, None)
        with self._connect() as conn:
            conn.execute("DELETE FROM access_key_usage WHERE access_key_id = ?", [access_key_id])
