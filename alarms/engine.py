"""The alarms of one server: rules, states, evaluation ticks, SetAlarmState and actions.

``tick`` is the scheduler's job (spec §5.3): every alarm due at the tick's instant is read in
one batched ``statistics`` call per anchor, evaluated with the pure ``alarms.evaluate``, then
composites whose children changed state are evaluated in dependency order, and ``settle``
decides the actions. Everything a round changed is written at its end in a few statements:
deliveries to the outbox first (at least once: a crash before the state is saved announces
again), then states and history, then the audit records.

One lock guards the in-memory states; the metric read runs outside it so that API calls are
never held up by a slow scan.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import duckdb
import orjson
import pyarrow as pa

from alarms.actions import Effects, alarm_type, settle
from alarms.definitions import API_SOURCE, load_all, rule_files
from alarms.evaluate import (
    Evaluation,
    cadence_s,
    evaluate_composite,
    is_due,
)
from alarms.notify import Outcome
from alarms.reads import Buckets, outcome_of, read_buckets
from alarms.rules import CompositeAlarm, MetricAlarm, RuleSet
from alarms.silences import active_silences
from alarms.state import AlarmStatus
from alarms.store import AlarmStore, HistoryItem
from core.errors import Conflict, NotFound
from query.metrics.reads import MetricSource
from store.metric_model import METRIC_SCHEMA, datum_row

__all__ = ["AlarmEngine", "AuditSink", "Rule", "TickReport"]

log = logging.getLogger(__name__)

Rule = MetricAlarm | CompositeAlarm
T = TypeVar("T")
AuditSink = Callable[[Sequence[tuple[str, dict[str, Any]]]], None]
TICK_MS = 10_000
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


@dataclass(frozen=True, slots=True)
class TickReport:
    at_ms: int
    evaluated: int
    transitions: int
    read_s: float  # the batched metric reads
    total_s: float


@dataclass(slots=True)
class _Round:
    """What one operation changed, written together by ``_commit``."""

    dirty: dict[str, AlarmStatus] = field(default_factory=dict)
    transitioned: set[str] = field(default_factory=set)
    evaluated: set[str] = field(default_factory=set)
    effects: Effects = field(default_factory=Effects)


class AlarmEngine:
    def __init__(
        self,
        store: AlarmStore,
        metrics: MetricSource,
        outbox: Outbox,
        *,
        rules_dir: Path | None,
        wake: Callable[[], None] = lambda: None,
        audit: AuditSink | None = None,
        publish: Callable[[pa.Table], object] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._metrics = metrics
        self._outbox = outbox
        self.rules_dir = rules_dir
        self._wake = wake
        self._audit = audit
        self._publish = publish
        self._clock = clock
        self._lock = threading.RLock()
        self._rules = RuleSet()
        self._statuses: dict[str, AlarmStatus] = {}
        self._pending_composites: set[str] = set()  # new or changed: evaluate at the next tick
        self._files: list[tuple[str, str]] = []  # the rule files as last loaded
        self._active_silences: set[str] = set()  # ids of the silences active last round
        self._last_tick_ms: int | None = None  # the scheduler's last instant

    # ---- lifecycle and rules

    def open(self) -> None:
        self.store.ensure_schema()
        with self._lock:
            self._statuses = self.store.load_states()
        self.reload()

    @property
    def rules(self) -> RuleSet:
        return self._rules

    def targets(self) -> Mapping[str, Any]:
        """For the notifier: targets are looked up at delivery time, after any reload."""
        return self._rules.targets

    def reload(self) -> RuleSet:
        """Load rule files and API definitions together; on any error nothing changes."""
        with self._lock:
            files = rule_files(self.rules_dir)
            ruleset = load_all(files, self.store.definitions(), self.store.silences())
            self._files = files
            self.apply_rules(ruleset)
        return ruleset

    # ---- alarms and silences created through the API

    def put_definition(self, kind: str, document: dict[str, Any]) -> None:
        """PutMetricAlarm / PutCompositeAlarm: validated with every other rule first."""
        name = document["name"]
        with self._lock:
            self._refuse_file_rule(name)
            definitions = self.store.definitions()
            existing = definitions.get(name)
            if existing is not None and existing["kind"] != kind:
                raise Conflict(
                    f"alarm {name!r} is a {existing['kind']} alarm; delete it first to replace "
                    f"it with a {kind} alarm",
                    details={"alarm": name, "kind": existing["kind"]},
                )
            definitions[name] = {"kind": kind, "alarm": document}
            ruleset = load_all(self._files, definitions, self.store.silences())
            self.store.put_definition(name, definitions[name], self.now_ms())
            self.apply_rules(ruleset)

    def delete_definition(self, name: str) -> None:
        """DeleteAlarms; refused while a composite references the alarm."""
        with self._lock:
            self._refuse_file_rule(name)
            definitions = self.store.definitions()
            if definitions.pop(name, None) is None:
                raise NotFound(f"alarm {name!r} does not exist", details={"alarm": name})
            ruleset = load_all(self._files, definitions, self.store.silences())
            self.store.delete_definition(name)
            self.apply_rules(ruleset)

    def put_silence(self, document: dict[str, Any]) -> None:
        with self._lock:
            silences = self.store.silences()
            silences[document["id"]] = document
            ruleset = load_all(self._files, self.store.definitions(), silences)
            self.store.put_silence(document["id"], document, self.now_ms())
            self.apply_rules(ruleset)

    def delete_silence(self, silence_id: str) -> None:
        with self._lock:
            silences = self.store.silences()
            if silences.pop(silence_id, None) is None:
                raise NotFound(f"silence {silence_id!r} does not exist")
            ruleset = load_all(self._files, self.store.definitions(), silences)
            self.store.delete_silence(silence_id)
            self.apply_rules(ruleset)

    def _refuse_file_rule(self, name: str) -> None:
        source = self._rules.files.get(name)
        if source is not None and source != API_SOURCE:
            raise Conflict(
                f"alarm {name!r} is defined in the rule file {source}; change it there",
                details={"file": source},
            )

    def apply_rules(self, ruleset: RuleSet) -> None:
        """Reconcile states with ``ruleset``: create, update (state kept) and delete alarms."""
        with self._lock:
            now = self.now_ms()
            work = _Round()
            wanted: dict[str, Rule] = {**ruleset.alarms, **ruleset.composites}
            for name, status in list(self._statuses.items()):
                rule = wanted.get(name)
                if rule is None or rule.kind != status.kind:
                    previous = self._rule(name)
                    kind = "CompositeAlarm" if status.kind == "composite" else "MetricAlarm"
                    data: dict[str, Any] = {"type": "Delete", "version": "1.0"}
                    if previous is not None:
                        data["originalAlarm"] = _rule_json(previous)
                    self._note(work, name, kind, now, f'Alarm "{name}" deleted', data)
                    del self._statuses[name]
                    self.store.delete_states([name])
            for name, rule in wanted.items():
                digest = _config_hash(rule)
                found = self._statuses.get(name)
                if found is None:
                    status = self._statuses[name] = AlarmStatus(name, rule.kind, now)
                    data = {"type": "Create", "version": "1.0", "updatedAlarm": _rule_json(rule)}
                    self._note(work, name, alarm_type(rule), now, f'Alarm "{name}" created', data)
                elif (status := found).runtime.config_hash != digest:
                    data = {"type": "Update", "version": "1.0", "updatedAlarm": _rule_json(rule)}
                    if (previous := self._rule(name)) is not None:
                        data["originalAlarm"] = _rule_json(previous)
                    self._note(work, name, alarm_type(rule), now, f'Alarm "{name}" updated', data)
                    # A put replaces the whole configuration (spec §5.1): actions follow the
                    # rule again. Nothing is replayed: while disabled, each state counted as
                    # announced; held announcements (wait period, silence) stay due.
                    status.runtime.actions_enabled = None
                else:
                    continue
                status.runtime.config_hash = digest
                work.dirty[name] = status
                if isinstance(rule, CompositeAlarm):
                    self._pending_composites.add(name)
            self._rules = ruleset
            self._pending_composites &= set(ruleset.composites)
            self._commit(work, now)

    # ---- evaluation

    def tick(self, at_ms: int | None = None) -> TickReport:
        """Evaluate every alarm due at ``at_ms``.

        Without ``at_ms`` (the scheduler's call) the instant is the latest 10 s one, and an
        alarm whose own instant was missed since the last tick (a late or overrunning round)
        is evaluated as of that instant, once: a minute alarm never skips a minute.
        """
        started = time.perf_counter()
        rules = self._rules
        if at_ms is None:
            now = self.now_ms()
            at_ms = now - now % TICK_MS
            instants = _due_instants(rules.alarms.values(), at_ms, self._last_tick_ms)
            self._last_tick_ms = at_ms
        else:
            instants = {a.name: at_ms for a in rules.alarms.values() if is_due(a, at_ms)}
        by_instant: dict[int, list[MetricAlarm]] = {}
        for name, instant in instants.items():
            by_instant.setdefault(instant, []).append(rules.alarms[name])
        buckets: dict[str, Buckets] = {}
        for instant, alarms in by_instant.items():
            buckets |= read_buckets(self._metrics, alarms, instant)
        read_s = time.perf_counter() - started
        with self._lock:
            work = _Round()
            for name, instant in instants.items():
                alarm = rules.alarms[name]
                if self._rules.alarms.get(name) is not alarm:
                    continue  # reloaded while the metrics were read
                status = self._statuses[name]
                outcome = outcome_of(alarm, buckets[name], status.state, instant)
                self._apply(work, alarm, status, outcome, instant)
                work.evaluated.add(name)
            self._evaluate_composites(work, at_ms)
            self._settle(work, at_ms)
            self._commit(work, at_ms)
        return TickReport(
            at_ms, len(instants), len(work.transitioned), read_s, time.perf_counter() - started
        )

    def _apply(
        self, work: _Round, rule: Rule, status: AlarmStatus, outcome: Evaluation, now: int
    ) -> None:
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
            self._transition(work, rule, status, outcome.state, outcome.reason,
                             outcome.reason_data, now)  # fmt: skip
        elif (outcome.reason, outcome.reason_data) != (status.reason, status.reason_data):
            status.reason, status.reason_data = outcome.reason, outcome.reason_data
            status.updated_ms = now
            work.dirty[rule.name] = status

    def _transition(
        self,
        work: _Round,
        rule: Rule,
        status: AlarmStatus,
        state: str,
        reason: str,
        reason_data: dict[str, Any],
        now: int,
    ) -> None:
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
        self._note(work, rule.name, alarm_type(rule), now, summary, data, "StateUpdate")
        work.transitioned.add(rule.name)
        work.dirty[rule.name] = status

    def _evaluate_composites(self, work: _Round, now: int) -> None:
        states = {name: status.state for name, status in self._statuses.items()}
        for name in self._rules.composite_order():
            rule = self._rules.composites[name]
            children = rule.parsed_rule.children
            if name not in self._pending_composites and work.transitioned.isdisjoint(children):
                continue
            self._pending_composites.discard(name)
            status = self._statuses[name]
            outcome = evaluate_composite(rule, states, status.state, now)
            self._apply(work, rule, status, outcome, now)
            work.evaluated.add(name)
            states[name] = status.state

    def _settle(self, work: _Round, now: int) -> None:
        """Decide the actions of every alarm the round touched; a changed runtime is saved.

        ``settle`` may change any field of the runtime, so the change is found by comparing
        the runtime's JSON before and after. orjson serialises the dataclass itself, which
        costs a few microseconds where ``to_json`` (``dataclasses.asdict``, a deep copy) cost
        about 150: with 10,000 alarms per round that was most of the round's CPU.
        """
        states = {name: status.state for name, status in self._statuses.items()}
        # Which silences hold actions is decided once per round (a cron schedule costs a few
        # hundred microseconds); every alarm is looked at only when that set changes.
        active = active_silences(self._rules.silences, now)
        changed = {s.id for s in active} != self._active_silences
        self._active_silences = {s.id for s in active}
        for name, status in self._statuses.items():
            rule = self._rule(name)
            if rule is None:
                continue
            runtime = status.runtime
            transitioned, evaluated = name in work.transitioned, name in work.evaluated
            watched = isinstance(rule, CompositeAlarm) and rule.suppression is not None
            if not (transitioned or evaluated or watched or runtime.held_by or changed):
                continue
            before = orjson.dumps(runtime)
            try:
                effects = settle(
                    rule,
                    status,
                    targets=self._rules.targets,
                    silences=active,
                    states=states,
                    now_ms=now,
                    transitioned=transitioned,
                    evaluated=evaluated,
                )
            except Exception:  # one alarm's actions must not stop the others' round
                log.exception("deciding the actions of alarm %s failed", name)
                continue
            work.effects.extend(effects)
            if orjson.dumps(runtime) != before:
                work.dirty[name] = status

    # ---- SetAlarmState and actions enabled (spec §5.8.2, §5.8.4)

    def set_state(
        self, name: str, state: str, reason: str, reason_data: dict[str, Any]
    ) -> AlarmStatus:
        with self._lock:
            rule, status = self.lookup(name)
            now = self.now_ms()
            work = _Round()
            if state != status.state:
                self._transition(work, rule, status, state, reason, reason_data, now)
            else:
                status.reason, status.reason_data, status.updated_ms = reason, reason_data, now
                work.dirty[name] = status
            self._evaluate_composites(work, now)
            self._settle(work, now)
            self._commit(work, now)
            return status

    def set_actions_enabled(self, name: str, enabled: bool) -> AlarmStatus:
        with self._lock:
            _, status = self.lookup(name)
            status.runtime.actions_enabled = enabled
            if enabled:  # transitions while disabled are not replayed
                status.runtime.announced = status.state
            self.store.save_states([status])
            return status

    def lookup(self, name: str) -> tuple[Rule, AlarmStatus]:
        rule = self._rule(name)
        status = self._statuses.get(name)
        if rule is None or status is None:
            raise NotFound(f"alarm {name!r} does not exist", details={"alarm": name})
        return rule, status

    def statuses(self) -> list[tuple[Rule, AlarmStatus]]:
        with self._lock:
            pairs = [(self._rule(n), s) for n, s in sorted(self._statuses.items())]
        return [(rule, status) for rule, status in pairs if rule is not None]

    def render(
        self, view: Callable[[Rule, AlarmStatus], T], names: Sequence[str] | None = None
    ) -> list[T]:
        """``view`` of every alarm (or of ``names``, which must exist), under the lock, so
        that no half-applied round shows. Call it off the event loop."""
        with self._lock:
            pairs = [self.lookup(n) for n in names] if names is not None else self.statuses()
            return [view(rule, status) for rule, status in pairs]

    # ---- delivery outcomes (from the notifier's thread)

    def on_delivery(self, outcome: Outcome) -> None:
        """The notifier's final word on a delivery (spec §5.9 Action items, §6.4): a history
        item and audit record; a failure also counts ``DeliveryFailures``."""
        delivery = outcome.delivery
        alarm, target = delivery.alarm, delivery.target
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
        at_ms = outcome.finished_ms
        with self._lock:
            rule = self._rule(alarm)
            kind = alarm_type(rule) if rule is not None else "MetricAlarm"
            work = _Round()
            self._note(work, alarm, kind, at_ms, summary, data, "Action")
            status = self._statuses.get(alarm)
            run = status.runtime.scaling.get(target) if status is not None else None
            if status is not None and run is not None and delivery.event == "alarm.scaling":
                run.pending = False
                if outcome.ok:
                    run.success_ms = at_ms  # the cooldown starts at a successful invocation
                work.dirty[alarm] = status
            self._commit(work, at_ms)
        if not outcome.ok and self._publish is not None:
            row = datum_row(
                namespace=NOTIFICATIONS_NAMESPACE,
                metric_name="DeliveryFailures",
                dimensions={"Target": target},
                ts_ms=at_ms,
                unit="Count",
                values=[1.0],
            )
            self._publish(pa.Table.from_pylist([row], schema=METRIC_SCHEMA))

    # ---- internals

    def _rule(self, name: str) -> Rule | None:
        return self._rules.alarms.get(name) or self._rules.composites.get(name)

    def _note(
        self,
        work: _Round,
        name: str,
        kind: str,
        now: int,
        summary: str,
        data: dict[str, Any],
        item_type: str = "ConfigurationUpdate",
    ) -> None:
        work.effects.history.append(HistoryItem(name, kind, now, item_type, summary, data))

    def _commit(self, work: _Round, now: int) -> None:
        """Deliveries, states and history in one transaction (a crash leaves all or none:
        never a delivery without the state that announced it); then the audit records. If
        the write fails, the states are read back, so memory never runs ahead of the store."""
        try:
            with self._outbox.transaction() as cur:
                for delivery in work.effects.deliveries:
                    alarm = delivery.body["alarm"]["name"]
                    self._outbox.enqueue_in(
                        cur, delivery.target, alarm, delivery.event, delivery.body, now
                    )
                self.store.save_states(work.dirty.values(), cur)
                self.store.append_history(work.effects.history, cur)
        except Exception:
            self._statuses = self.store.load_states()
            raise
        if self._audit is not None and work.effects.history:
            self._audit([(_AUDIT_EVENTS[i.item_type], i.to_json()) for i in work.effects.history])
        if work.effects.deliveries:
            self._wake()

    def now_ms(self) -> int:
        return int(self._clock() * 1_000)


def _due_instants(alarms: Iterable[MetricAlarm], at_ms: int, last_ms: int | None) -> dict[str, int]:
    """Each alarm's latest own instant (spec §5.3) at or before ``at_ms`` that no tick has
    evaluated yet: ``at_ms`` itself when it is one, or one missed since ``last_ms``."""
    out: dict[str, int] = {}
    for alarm in alarms:
        cadence_ms = cadence_s(alarm) * 1_000
        instant = at_ms - at_ms % cadence_ms
        if instant == at_ms or (last_ms is not None and instant > last_ms):
            out[alarm.name] = instant
    return out


def _rule_json(rule: Rule) -> dict[str, Any]:
    return rule.model_dump(mode="json", by_alias=True, exclude_none=True)


def _config_hash(rule: Rule) -> str:
    text = orjson.dumps({"kind": rule.kind, **_rule_json(rule)}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()[:16]


def _history_state(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "stateValue": snapshot["value"],
        "stateReason": snapshot["reason"],
        "stateReasonData": snapshot["reason_data"],
    }
