"""Files that left the catalog, deleted only after a grace period.

A reader that took its snapshot just before a compaction or retention run may still be reading
a replaced file; keeping it for ``grace_s`` makes that safe. Both the log lake and the metric
lake use this.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path


class DoomedFiles:
    def __init__(self, *, remove_empty_parents: bool = False) -> None:
        self._remove_empty_parents = remove_empty_parents
        self._doomed: list[tuple[float, Path]] = []

    def add(self, paths: Iterable[Path], *, now: Callable[[], float] = time.monotonic) -> None:
        at = now()
        self._doomed += [(at, path) for path in paths]

    def purge(self, grace_s: float, *, now: Callable[[], float] = time.monotonic) -> int:
        """Delete the files doomed more than ``grace_s`` ago; return how many."""
        cutoff = now() - grace_s
        due = [path for when, path in self._doomed if when <= cutoff]
        self._doomed = [(when, path) for when, path in self._doomed if when > cutoff]
        for path in due:
            path.unlink(missing_ok=True)
            if self._remove_empty_parents:
                try:
                    path.parent.rmdir()  # only succeeds once the partition is empty
                except OSError:
                    pass
        return len(due)
