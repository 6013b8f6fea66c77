"""Rate limiting of failed-authentication records (spec audit §2.7.5).

The first ``limit`` failures per source IP and minute are recorded one by one; beyond that the
gate stops writing them and counts them here, and once a minute each flooding IP gets one
``AuthFailureSummary`` service event with the count, the distinct key ids and error codes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class _Window:
    started: float
    recorded: int = 0
    suppressed: int = 0
    key_ids: set[str] = field(default_factory=set)
    codes: set[str] = field(default_factory=set)


class AuthFailureLimiter:
    def __init__(self, limit_per_minute: int, clock: Callable[[], float] = time.time) -> None:
        self._limit = limit_per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}

    def admit(self, source_ip: str, access_key_id: str | None, code: str) -> bool:
        """True if this failure gets a record of its own; False if it is only counted."""
        if self._limit == 0:
            return True
        now = self._clock()
        with self._lock:
            window = self._windows.get(source_ip)
            if window is None or (now - window.started >= 60 and not window.suppressed):
                window = self._windows[source_ip] = _Window(started=now)
            if window.recorded < self._limit:
                window.recorded += 1
                return True
            window.suppressed += 1
            if access_key_id:
                window.key_ids.add(access_key_id)
            window.codes.add(code)
            return False

    def summaries(self, *, force: bool = False) -> list[dict[str, Any]]:
        """Close every window older than a minute (all with ``force``); one summary per flood."""
        now = self._clock()
        out = []
        with self._lock:
            for ip, window in list(self._windows.items()):
                if not force and now - window.started < 60:
                    continue
                del self._windows[ip]
                if window.suppressed:
                    out.append(
                        {
                            "sourceIPAddress": ip,
                            "windowStart": window.started,
                            "windowEnd": now,
                            "suppressedCount": window.suppressed,
                            "recordedCount": window.recorded,
                            "accessKeyIds": sorted(window.key_ids),
                            "errorCodes": sorted(window.codes),
                        }
                    )
        return out
