"""What an alarm is now: its state, reason, timestamps and action bookkeeping (spec §5.2, §5.8).

``AlarmStatus`` is the mutable record the engine keeps per alarm; ``Runtime`` holds what the
actions need between evaluations: the last state whose actions actually ran (decision D9, also
used to catch up after silences), the suppression timers of composites, scaling-hook repeats
and the forced state of a composite after ``SetAlarmState``. Both serialise to JSON for the
catalog (``alarms.store``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from alarms.outcome import INITIAL_REASON

__all__ = ["STATES", "AlarmStatus", "Runtime", "ScalingRun", "iso_ms"]

STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")


@dataclass(slots=True)
class ScalingRun:
    """One scaling hook of one alarm: when it last ran, last succeeded, and its repeat count."""

    last_ms: int = 0
    success_ms: int = 0
    repeat: int = 0
    pending: bool = False  # a delivery is queued: repeats wait for its outcome (no pile-up)


@dataclass(slots=True)
class Runtime:
    config_hash: str = ""  # of the rule last applied: a changed rule is a ConfigurationUpdate
    announced: str = "INSUFFICIENT_DATA"  # the last state whose actions ran (D9)
    actions_enabled: bool | None = None  # set through the API; None follows the rule
    held_by: str | None = None  # ActionsSuppressedBy: WaitPeriod, ExtensionPeriod, Alarm, Silence
    held_reason: str | None = None
    wait_until_ms: int | None = None
    extension_until_ms: int | None = None
    suppressor_in_alarm: bool = False
    breach: dict[str, float] | None = None  # the newest datapoint of the last decision
    previous: dict[str, Any] | None = None  # the state before the last transition
    scaling: dict[str, ScalingRun] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Runtime:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        scaling = {name: ScalingRun(**run) for name, run in known.pop("scaling", {}).items()}
        return cls(**known, scaling=scaling)


@dataclass(slots=True)
class AlarmStatus:
    name: str
    kind: str  # "metric" or "composite"
    updated_ms: int
    state: str = "INSUFFICIENT_DATA"
    reason: str = INITIAL_REASON
    reason_data: dict[str, Any] = field(default_factory=dict)
    transitioned_ms: int | None = None
    evaluation_state: str | None = None
    runtime: Runtime = field(default_factory=Runtime)

    def snapshot(self) -> dict[str, Any]:
        """The state as history items and webhook bodies show it."""
        return {
            "value": self.state,
            "reason": self.reason,
            "reason_data": self.reason_data,
            "timestamp": iso_ms(self.updated_ms),
        }

    def state_json(self) -> dict[str, Any]:
        return {
            **self.snapshot(),
            "transitioned": iso_ms(self.transitioned_ms) if self.transitioned_ms else None,
        }


def iso_ms(ms: int) -> str:
    """``2026-01-01T10:05:00.412Z``: the timestamps of the alarm API and webhooks."""
    moment = datetime.fromtimestamp(ms / 1_000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1_000:03d}Z"
