"""What ``watchkeep serve`` checks before it starts the server: errors an operator can fix,
said in one line, instead of a server traceback after a half start."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from server.cli_http import fail
from store.layout import CATALOG_FILE

_LOCK_PID = re.compile(r"PID (\d+)")


def check_data_dir(data_dir: Path) -> None:
    """The data directory can be created and written, and no other server holds it."""
    if data_dir.exists() and not data_dir.is_dir():
        fail(f"the data directory {data_dir} is a file; pass --data-dir a directory")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".write-check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        fail(f"the data directory {data_dir} cannot be used: {exc.strerror or exc}")
    catalog = data_dir / CATALOG_FILE
    if not catalog.exists():
        return
    try:
        duckdb.connect(str(catalog)).close()
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        pid = _LOCK_PID.search(str(exc))
        holder = f" (PID {pid.group(1)})" if pid else ""
        fail(
            f"the data directory {data_dir} is in use by another process{holder}: one server "
            "per data directory"
        )
