"""Start-up after a crash: drop files no catalog entry owns, replay intact WAL records."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from store.layout import LOGS_TABLE_DIR
from store.wal import read_records

log = logging.getLogger(__name__)


def remove_orphans(data_dir: Path, known: set[str]) -> int:
    """Delete temp files and segments the catalog does not list.

    A crash between writing a segment and committing it to the catalog leaves such a file; its
    events are still in the WAL, so deleting it is what keeps replay from duplicating them.
    """
    removed = 0
    root = data_dir / LOGS_TABLE_DIR
    if not root.exists():
        return 0
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        relative = str(path.relative_to(data_dir))
        if path.name.endswith(".tmp") or relative not in known:
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.warning("removed %d unreferenced files under %s", removed, root)
    return removed


def replay_wal(files: list[Path], apply: Callable[[dict[str, Any], memoryview], bool]) -> int:
    """Feed every intact record to ``apply`` in order; cut torn tails off; count applied."""
    applied = 0
    for path in files:
        records, good_bytes = read_records(path)
        for record in records:
            applied += apply(record.header, record.payload)
        size = path.stat().st_size
        if good_bytes < size:
            # The torn part was never acknowledged (acks follow the fsync); cut it so the
            # next reader does not stumble on it.
            log.warning("WAL %s: discarding %d torn bytes at its end", path, size - good_bytes)
            with open(path, "r+b") as handle:
                handle.truncate(good_bytes)
                os.fsync(handle.fileno())
    return applied
