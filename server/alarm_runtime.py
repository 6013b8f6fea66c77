"""The alarms of a running server: engine, outbox and notifier, opened and closed together.

The engine is opened at start-up (an invalid rule directory stops the server: a typo must not
silently disable an alarm); its ticks and the notifier start once the metric store has
replayed its WAL, so the first evaluation sees every acknowledged datum. ``SIGHUP`` reloads the
rules, as ``POST /api/v1/alarms/reload`` does.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alarms.engine import AlarmEngine
from alarms.notify import Notifier
from alarms.outbox import Outbox
from alarms.rules import RulesError
from alarms.store import AlarmStore
from audit.record import Account, service_event_record
from audit.trail import AuditTrail
from server.scheduler import Scheduler
from server.settings import Settings
from store.engine import Store
from store.metrics import MetricStore

__all__ = ["AlarmRuntime", "open_alarms"]

log = logging.getLogger("watchkeep")
AUDIT_SOURCE = "monitoring.watchkeep"
TICK_S = 10.0  # spec §5.3: high-resolution alarms every 10 s, the others every minute
DAY_S = 86_400.0


@dataclass
class AlarmRuntime:
    engine: AlarmEngine
    outbox: Outbox
    notifier: Notifier

    def start(self, scheduler: Scheduler) -> None:
        scheduler.every(
            TICK_S, self.engine.tick, name="alarm-tick", aligned=True, executor="alarms"
        )
        # Daily, and once now: a server restarted every day would otherwise never purge.
        scheduler.every(DAY_S, self._purge, name="alarm-purge")
        scheduler.once(self._purge, name="alarm-purge-at-start")
        self.notifier.start()
        self._watch_sighup()

    def close(self) -> None:
        self.notifier.stop()

    def _purge(self) -> None:
        """History after 30 days (spec §5.9); delivered webhooks after 7, dead ones after 30."""
        now, day_ms = self.engine.now_ms(), int(DAY_S) * 1_000
        self.engine.store.purge_history(now)
        self.outbox.purge(now - 7 * day_ms, dead_older_than_ms=now - 30 * day_ms)

    def _watch_sighup(self) -> None:
        try:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGHUP, self._reload_in_thread)
        except (RuntimeError, ValueError, NotImplementedError):
            pass  # not the main thread (tests run servers in threads) or no signals here

    def _reload_in_thread(self) -> None:
        async def reload() -> None:
            try:
                rules = await asyncio.to_thread(self.engine.reload)
            except RulesError as exc:
                log.error("SIGHUP: the rules were not reloaded: %s", exc.message)
                return
            log.info("SIGHUP: reloaded %d alarms", len(rules.alarms) + len(rules.composites))

        asyncio.get_running_loop().create_task(reload())


def open_alarms(
    settings: Settings, store: Store, metrics: MetricStore, trail: AuditTrail, account: Account
) -> AlarmRuntime:
    outbox = Outbox(store.cursor)
    outbox.ensure_schema()

    def audit(events: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Group-committed: a round with thousands of transitions waits for one fsync."""
        pending = [
            trail.append(
                service_event_record(
                    name, details, account, invoked_by=AUDIT_SOURCE, event_source_name=AUDIT_SOURCE
                )
            )
            for name, details in events
        ]
        for future in pending:
            future.result()

    notifier: Notifier | None = None
    engine = AlarmEngine(
        AlarmStore(store.cursor),
        metrics,
        outbox,
        rules_dir=settings.rules_dir or settings.data_dir / "rules",
        rules_required=settings.rules_dir is not None,  # named by the operator: it must exist
        wake=lambda: notifier.wake() if notifier is not None else None,
        audit=audit,
        publish=metrics.put,
    )
    notifier = Notifier(outbox, engine.targets, engine.on_delivery)
    engine.open()
    return AlarmRuntime(engine, outbox, notifier)
