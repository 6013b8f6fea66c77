"""The one scheduler of the process: every periodic job runs here, as a plain function."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)
# Aligned jobs start this long after their instant, so that the instant has surely passed.
_ALIGN_MARGIN_S = 0.2


class Scheduler:
    def __init__(self) -> None:
        # A flush that overruns its 1 s interval is normal under load; APScheduler would warn
        # about every skipped run. Failures are still logged, by ``every``'s wrapper.
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        # Every run of every job is logged at INFO: a line a second for the flush alone.
        logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
        # Two threads: a slow compaction must not hold back the next flush; and one of their
        # own for alarm rounds, which must start on their instant whatever else runs.
        self._scheduler = BackgroundScheduler(
            executors={
                "default": {"type": "threadpool", "max_workers": 2},
                "alarms": {"type": "threadpool", "max_workers": 1},
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone="UTC",
        )

    def every(
        self,
        seconds: float,
        job: Callable[[], Any],
        *,
        name: str,
        aligned: bool = False,
        executor: str = "default",
    ) -> None:
        """Run ``job`` every ``seconds``; an exception is logged and the job runs again later.

        ``aligned`` runs it just after each multiple of ``seconds`` of the Unix clock, where
        alarm evaluation instants fall (spec §5.3); ``executor`` "alarms" is their thread.
        """

        run = _logged(job, name)
        start = None
        if aligned:
            now = time.time()
            start = datetime.fromtimestamp(now - now % seconds + seconds + _ALIGN_MARGIN_S, UTC)
        self._scheduler.add_job(
            run,
            "interval",
            seconds=seconds,
            id=name,
            name=name,
            start_date=start,
            executor=executor,
        )

    def once(self, job: Callable[[], Any], *, name: str) -> None:
        """Run ``job`` once, as soon as the scheduler runs; an exception is logged."""
        self._scheduler.add_job(_logged(job, name), "date", id=name, name=name)

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)


def _logged(job: Callable[[], Any], name: str) -> Callable[[], None]:
    """``job``, with any exception logged: the job runs again at its next time."""

    def run() -> None:
        try:
            job()
        except Exception:
            log.exception("scheduled job %s failed", name)

    return run
