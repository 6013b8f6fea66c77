"""What a compiled query may read besides its events. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CompileOptions"]


@dataclass(frozen=True, slots=True)
class CompileOptions:
    """What a query may read besides its events: account id, request limit, the clock."""

    account_id: str = "000000000000"
    limit: int | None = None
    now_ms: int = 0
    start_ms: int = 0
    end_ms: int = 0
    # How many log groups the query reads; with one, ties need no group tie-breaker.
    groups: int = 0
    # The store counts recordsScanned and bytesScanned itself (``Store.scan_totals``), so the
    # SQL need not scan for them.
    scanned_by_store: bool = False
