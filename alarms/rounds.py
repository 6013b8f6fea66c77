"""What one operation of the engine changed (a ``Round``), and how an evaluation's outcome or a
forced state changes an alarm's status within it (spec §5.2, §5.8.1, §5.9). No I/O: the engine
writes a round with ``alarms.commit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alarms.actions import Effects, alarm_type
from alarms.outcome import Evaluation
from alarms.rules import CompositeAlarm, MetricAlarm
from alarms.state import AlarmStatus
from alarms.store import HistoryItem

__all__ = ["Round", "apply_outcome", "transition"]

Rule = MetricAlarm | CompositeAlarm


@dataclass(slots=True)
class Round:
    """What one operation changed, written together by the engine's commit."""

    dirty: dict[str, AlarmStatus] = field(default_factory=dict)
    transitioned: set[str] = field(default_factory=set)
    evaluated: set[str] = field(default_factory=set)
    effects: Effects = field(default_factory=Effects)

    def note(
        self,
        name: str,
        kind: str,
        now: int,
        summary: str,
        data: dict[str, Any],
        item_type: str = "ConfigurationUpdate",
    ) -> None:
        """One history item (spec §5.9) of alarm ``name`` of type ``kind``."""
        self.effects.history.append(HistoryItem(name, kind, now, item_type, summary, data))


def apply_outcome(
    work: Round, rule: Rule, status: AlarmStatus, outcome: Evaluation, now: int
) -> None:
    """Record an evaluation: a transition, a new reason, or an evaluation error (spec §5.2)."""
    if outcome.evaluation_state is not None:
        if status.evaluation_state != outcome.evaluation_state:
            status.evaluation_state = outcome.evaluation_state
            status.reason = outcome.reason
            work.dirty[rule.name] = status
        return
    if status.evaluation_state is not None:
        status.evaluation_state = None
        work.dirty[rule.name] = status
    if outcome.kept:
        return
    breach = outcome.breach  # scaling hooks size from the newest decision only (§6.5)
    status.runtime.breach = (
        {"value": breach.value, "threshold": breach.threshold, "delta": breach.delta}
        if breach is not None
        else None
    )
    if outcome.state != status.state:
        transition(work, rule, status, outcome.state, outcome.reason, outcome.reason_data, now)
    elif (outcome.reason, outcome.reason_data) != (status.reason, status.reason_data):
        status.reason, status.reason_data = outcome.reason, outcome.reason_data
        status.updated_ms = now
        work.dirty[rule.name] = status


def transition(
    work: Round,
    rule: Rule,
    status: AlarmStatus,
    state: str,
    reason: str,
    reason_data: dict[str, Any],
    now: int,
) -> None:
    """Change the state value (spec §5.8.1) and note the StateUpdate history item."""
    old = status.snapshot()
    status.runtime.previous = {k: old[k] for k in ("value", "reason", "timestamp")}
    status.state, status.reason, status.reason_data = state, reason, reason_data
    status.updated_ms = status.transitioned_ms = now
    data = {
        "version": "1.0",
        "oldState": _history_state(old),
        "newState": _history_state(status.snapshot()),
    }
    summary = f"Alarm updated from {old['value']} to {state}"
    work.note(rule.name, alarm_type(rule), now, summary, data, "StateUpdate")
    work.transitioned.add(rule.name)
    work.dirty[rule.name] = status


def _history_state(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "stateValue": snapshot["value"],
        "stateReason": snapshot["reason"],
        "stateReasonData": snapshot["reason_data"],
    }
