"""Which actions run after an evaluation or SetAlarmState, and what they send (spec §5.8, §6.4-6.6).

One rule decides for every alarm (decision D9, extended to silences): an alarm remembers the
last state whose actions ran (``Runtime.announced``); the actions of a state run only when it
differs from that. While actions are held (a silence, or a composite's suppressor with its wait
and extension periods) transitions are recorded as suppressed and not announced; when the hold
ends the current state is announced once if it differs. With actions disabled every new state
counts as announced, so re-enabling replays nothing (§5.8.2). Scaling hooks also repeat while
the alarm stays in their state (§5.8.3).

``settle`` mutates the alarm's ``Runtime`` and returns the deliveries and history items to
write; it does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from alarms.rules import CompositeAlarm, MetricAlarm, ScalingTarget, Silence, WebhookTarget
from alarms.state import AlarmStatus, ScalingRun, iso_ms
from alarms.store import HistoryItem
from alarms.webhook import scaling_adjustment

__all__ = ["Delivery", "Effects", "alarm_type", "configuration", "envelope", "settle"]

Rule = MetricAlarm | CompositeAlarm
Target = WebhookTarget | ScalingTarget


@dataclass(frozen=True, slots=True)
class Delivery:
    target: str
    event: str  # alarm.state_change or alarm.scaling
    body: dict[str, Any]


@dataclass(slots=True)
class Effects:
    deliveries: list[Delivery] = field(default_factory=list)
    history: list[HistoryItem] = field(default_factory=list)

    def extend(self, other: Effects) -> None:
        self.deliveries += other.deliveries
        self.history += other.history


def alarm_type(rule: Rule) -> str:
    return "CompositeAlarm" if isinstance(rule, CompositeAlarm) else "MetricAlarm"


def configuration(rule: Rule) -> dict[str, Any]:
    """The rule as its file says it, without identity, labels and actions."""
    if isinstance(rule, CompositeAlarm):
        return {"rule": rule.rule}
    return rule.model_dump(
        mode="json",
        by_alias=True,
        exclude_none=True,
        exclude={"name", "description", "labels", "actions", "actions_enabled"},
    )


def envelope(event: str, rule: Rule, status: AlarmStatus) -> dict[str, Any]:
    """The webhook body of spec §6.4, without ``delivery_id`` (the outbox adds it)."""
    runtime = status.runtime
    return {
        "version": "1",
        "event": event,
        "alarm": {
            "name": rule.name,
            "kind": rule.kind,
            "description": rule.description,
            "labels": rule.labels,
        },
        "state": status.snapshot(),
        "previous_state": runtime.previous,
        "configuration": configuration(rule),
        "actions_suppressed_by": runtime.held_by,
    }


def settle(
    rule: Rule,
    status: AlarmStatus,
    *,
    targets: Mapping[str, Target],
    silences: Sequence[Silence],
    states: Mapping[str, str],
    now_ms: int,
    transitioned: bool,
    evaluated: bool,
) -> Effects:
    """Run, hold or repeat the actions of ``status``'s current state; ``silences`` are the
    ones active now (the engine decides that once per round)."""
    runtime = status.runtime
    effects = Effects()
    held = _held(rule, status, silences, states, now_ms, transitioned)
    runtime.held_by, runtime.held_reason = held if held is not None else (None, None)
    enabled = (
        runtime.actions_enabled if runtime.actions_enabled is not None else rule.actions_enabled
    )
    names = rule.actions.for_state(status.state)
    if not enabled:
        runtime.announced = status.state
        return effects
    if held is not None:
        if transitioned:
            for name in names:
                effects.history.append(_action_item(rule, now_ms, held[1], name, "Suppressed"))
        return effects
    if status.state != runtime.announced:
        runtime.announced = status.state
        for name in names:
            _run(rule, status, name, targets[name], 0, now_ms, effects)
    elif evaluated:
        for name in names:
            target = targets[name]
            if isinstance(target, ScalingTarget):
                run = runtime.scaling.get(name)
                repeat = run.repeat + 1 if run is not None else 0
                if run is None or now_ms - run.last_ms >= target.repeat_interval * 1_000:
                    _run(rule, status, name, target, repeat, now_ms, effects)
    return effects


def _held(
    rule: Rule,
    status: AlarmStatus,
    silences: Sequence[Silence],
    states: Mapping[str, str],
    now_ms: int,
    transitioned: bool,
) -> tuple[str, str] | None:
    """(ActionsSuppressedBy, reason) while actions are held, else None."""
    for silence in silences:
        if silence.match.matches(rule.name, rule.labels):
            return "Silence", f"Suppressed by silence {silence.id}"
    if isinstance(rule, CompositeAlarm) and rule.suppression is not None:
        return _suppressed(rule, status, states, now_ms, transitioned)
    return None


def _suppressed(
    rule: CompositeAlarm,
    status: AlarmStatus,
    states: Mapping[str, str],
    now_ms: int,
    transitioned: bool,
) -> tuple[str, str] | None:
    """The suppressor with its wait and extension periods (spec §5.11.4)."""
    suppression = rule.suppression
    assert suppression is not None
    runtime = status.runtime
    suppressor = suppression.suppressor
    if states.get(suppressor) == "ALARM":
        runtime.suppressor_in_alarm = True
        runtime.wait_until_ms = runtime.extension_until_ms = None
        return "Alarm", f"Actions suppressed by {suppressor} in ALARM"
    if runtime.suppressor_in_alarm:  # it has just left ALARM
        runtime.suppressor_in_alarm = False
        if suppression.extension_period:
            runtime.extension_until_ms = now_ms + suppression.extension_period * 1_000
    if runtime.extension_until_ms is not None:
        if now_ms < runtime.extension_until_ms:
            until = iso_ms(runtime.extension_until_ms)
            return "ExtensionPeriod", f"Actions suppressed until {until} (extension period)"
        runtime.extension_until_ms = None
    if runtime.wait_until_ms is not None:
        if status.state == "ALARM" and now_ms < runtime.wait_until_ms:
            until = iso_ms(runtime.wait_until_ms)
            return "WaitPeriod", f"Actions held until {until} (wait period for {suppressor})"
        runtime.wait_until_ms = None
        return None
    entering = transitioned and status.state == "ALARM" and runtime.announced != "ALARM"
    if entering and suppression.wait_period > 0:
        runtime.wait_until_ms = now_ms + suppression.wait_period * 1_000
        until = iso_ms(runtime.wait_until_ms)
        return "WaitPeriod", f"Actions held until {until} (wait period for {suppressor})"
    return None


def _run(
    rule: Rule,
    status: AlarmStatus,
    name: str,
    target: Target,
    repeat: int,
    now_ms: int,
    effects: Effects,
) -> None:
    if isinstance(target, WebhookTarget):
        body = envelope("alarm.state_change", rule, status)
        effects.deliveries.append(Delivery(name, "alarm.state_change", body))
        return
    runtime = status.runtime
    run = runtime.scaling.setdefault(name, ScalingRun())
    if repeat > 0 and run.pending:
        return  # the autoscaler has not answered the last call: repeats must not queue up
    if run.success_ms and now_ms < run.success_ms + target.cooldown * 1_000:
        if repeat == 0:
            until = iso_ms(run.success_ms + target.cooldown * 1_000)
            effects.history.append(
                _action_item(
                    rule, now_ms, f"Skipped action {name}: cooldown until {until}", name, "Skipped"
                )
            )
        return
    breach = runtime.breach
    adjustment = None
    if breach is not None:
        adjustment = scaling_adjustment(target.adjustment, breach["delta"])
    if adjustment is None:
        why = "no datapoint to size it" if breach is None else "no step covers the breach"
        effects.history.append(
            _action_item(rule, now_ms, f"Failed to execute action {name}: {why}", name, "Failed")
        )
        return
    run.last_ms, run.repeat, run.pending = now_ms, repeat, True
    body = envelope("alarm.scaling", rule, status)
    body |= {"group": target.group, "adjustment": adjustment, "breach": breach, "repeat": repeat}
    effects.deliveries.append(Delivery(name, "alarm.scaling", body))


def _action_item(
    rule: Rule, now_ms: int, summary: str, target: str, action_state: str
) -> HistoryItem:
    data = {"actionState": action_state, "target": target}
    return HistoryItem(rule.name, alarm_type(rule), now_ms, "Action", summary, data)
