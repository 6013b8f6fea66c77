"""Writing what a round changed (``alarms.rounds.Round``), and the record of a delivery's outcome.

Deliveries, states and history go into one transaction: a crash leaves all or none, never a
delivery without the state that announced it. The audit records follow once that is durable,
then the notifier is woken. A failed delivery also counts ``Watchkeep/Notifications``
``DeliveryFailures`` (spec §6.4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from alarms.notify import Outcome
from alarms.rounds import Round
from alarms.store import AlarmStore
from store.metric_model import METRIC_SCHEMA, datum_row

__all__ = [
    "NOTIFICATIONS_NAMESPACE",
    "AuditSink",
    "Outbox",
    "RoundWriter",
    "delivery_note",
    "failure_datum",
]

AuditSink = Callable[[Sequence[tuple[str, dict[str, Any]]]], None]
NOTIFICATIONS_NAMESPACE = "Watchkeep/Notifications"
_AUDIT_EVENTS = {
    "StateUpdate": "AlarmStateChange",
    "Action": "AlarmAction",
    "ConfigurationUpdate": "AlarmConfigurationUpdate",
}


class Outbox(Protocol):
    def transaction(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...

    def enqueue_in(
        self,
        cur: duckdb.DuckDBPyConnection,
        target: str,
        alarm: str,
        event: str,
        body: dict[str, Any],
        now_ms: int,
    ) -> object: ...


class RoundWriter:
    """Writes rounds to the alarm store and the outbox, then tells the audit trail and the
    notifier."""

    def __init__(
        self,
        store: AlarmStore,
        outbox: Outbox,
        *,
        audit: AuditSink | None,
        wake: Callable[[], None],
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._audit = audit
        self._wake = wake

    def persist(self, work: Round, now: int) -> None:
        """Deliveries, states and history in one transaction."""
        with self._outbox.transaction() as cur:
            for delivery in work.effects.deliveries:
                alarm = delivery.body["alarm"]["name"]
                self._outbox.enqueue_in(
                    cur, delivery.target, alarm, delivery.event, delivery.body, now
                )
            self._store.save_states(work.dirty.values(), cur)
            self._store.append_history(work.effects.history, cur)

    def announce(self, work: Round) -> None:
        """After ``persist``: the audit records, and a wake-up for new deliveries."""
        if self._audit is not None and work.effects.history:
            self._audit([(_AUDIT_EVENTS[i.item_type], i.to_json()) for i in work.effects.history])
        if work.effects.deliveries:
            self._wake()


def delivery_note(outcome: Outcome) -> tuple[str, dict[str, Any]]:
    """The summary and data of a delivery's Action history item (spec §5.9)."""
    delivery = outcome.delivery
    target = delivery.target
    if outcome.ok:
        summary = f"Successfully executed action {target}"
    else:
        summary = f'Failed to execute action {target}. Received error: "{outcome.error}"'
    data = {
        "actionState": "Succeeded" if outcome.ok else "Failed",
        "target": target,
        "event": delivery.event,
        "deliveryId": delivery.delivery_id,
        "attempts": outcome.attempts,
        "statusCode": outcome.status_code,
    }
    return summary, data


def failure_datum(target: str, at_ms: int) -> pa.Table:
    """One ``DeliveryFailures`` datum of ``target`` at ``at_ms``."""
    row = datum_row(
        namespace=NOTIFICATIONS_NAMESPACE,
        metric_name="DeliveryFailures",
        dimensions={"Target": target},
        ts_ms=at_ms,
        unit="Count",
        values=[1.0],
    )
    return pa.Table.from_pylist([row], schema=METRIC_SCHEMA)
