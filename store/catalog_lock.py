"""Whether another process holds a data directory's catalog. DuckDB's lock on the catalog file
is what keeps a second server, or an offline tool, off a data directory in use."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

__all__ = ["CatalogInUse", "connect_unshared"]

_PID = re.compile(r"\(PID (\d+)\)")


class CatalogInUse(Exception):
    """The catalog is held by another process (``pid``, when DuckDB names it) or connection."""

    def __init__(self, path: Path, pid: int | None) -> None:
        super().__init__(f"{path} is in use" + (f" by PID {pid}" if pid else ""))
        self.pid = pid


def connect_unshared(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the catalog at ``path``; ``CatalogInUse`` when another process (or, in
    this process, another connection of the other mode) holds it. Other errors pass through."""
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except (duckdb.IOException, duckdb.ConnectionException) as exc:
        text = str(exc)
        if "lock" not in text.lower() and "same database file" not in text:
            raise
        pid = _PID.search(text)
        raise CatalogInUse(path, int(pid.group(1)) if pid else None) from exc
