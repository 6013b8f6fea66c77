"""The alarms of one server: rules, states, evaluation ticks, SetAlarmState and actions.

``tick`` is the scheduler's job (spec §5.3): every alarm due at the tick's instant is read in
one batched ``statistics`` call per anchor, evaluated with the pure ``alarms.evaluate``, then
composites whose children changed state are evaluated in dependency order, and ``settle``
decides the actions. Everything a round changed is written at its end in a few statements:
deliveries to the outbox first (at least once: a crash before the state is saved announces
again), then states and history, then the audit records.

One lock guards the in-memory states; the metric read runs outside it so that API calls are
never held up by a slow scan. A round's bookkeeping is in ``alarms.rounds``, its writing in
``alarms.commit``, reconciling states with new rules in ``alarms.reconcile``; API alarms and
silences are checked against the running rules by ``alarms.definitions``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pyarrow as pa

from alarms import definitions
from alarms.actions import alarm_type, settle
from alarms.commit import AuditSink, Outbox, RoundWriter, delivery_note, failure_datum
from alarms.definitions import API_SOURCE, load_all, rule_files
from alarms.evaluate import cadence_s, evaluate_composite, is_due
from alarms.notify import Outcome
from alarms.reads import Buckets, outcome_of, read_buckets
from alarms.reconcile import reconcile
from alarms.rounds import Round, Rule, apply_outcome, transition
from alarms.rules import CompositeAlarm, MetricAlarm, RuleSet
from alarms.silences import active_silences
from alarms.state import AlarmStatus
from alarms.store import AlarmStore
from core.errors import Conflict, NotFound
from query.metrics.reads import MetricSource

# Outbox and AuditSink live in alarms.commit, Rule in alarms.rounds: importing them from here
# is the public way.
__all__ = ["AlarmEngine", "AuditSink", "Outbox", "Rule", "TickReport"]

log = logging.getLogger(__name__)

T = TypeVar("T")
TICK_MS = 10_000


@dataclass(frozen=True, slots=True)
class TickReport:
    at_ms: int
    evaluated: int
    transitions: int
    read_s: float  # the batched metric reads
    total_s: float


class AlarmEngine:
    def __init__(
        self,
        store: AlarmStore,
        metrics: MetricSource,
        outbox: Outbox,
        *,
        rules_dir: Path | None,
        rules_required: bool = False,
        wake: Callable[[], None] = lambda: None,
        audit: AuditSink | None = None,
        publish: Callable[[pa.Table], object] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._metrics = metrics
        self._writer = RoundWriter(store, outbox, audit=audit, wake=wake)
        self.rules_dir = rules_dir  # a directory or one rule file
        self.rules_required = rules_required  # named by the user: a missing path is an error
        self._publish = publish
        self._clock = clock
        self._lock = threading.RLock()
        self._rules = RuleSet()
        self._statuses: dict[str, AlarmStatus] = {}
        self._pending_composites: set[str] = set()  # new or changed: evaluate at the next tick
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
            files = rule_files(self.rules_dir, required=self.rules_required)
            ruleset = load_all(files, self.store.definitions(), self.store.silences())
            self.apply_rules(ruleset)
        for warning in ruleset.warnings:
            log.warning("rules: %s", warning)
        return ruleset

    # ---- alarms and silences created through the API: each is checked against the running
    # rules and only its own alarm is reconciled, so a put costs its size, not a full load.

    def put_definition(self, kind: str, document: dict[str, Any]) -> None:
        """PutMetricAlarm / PutCompositeAlarm: validated against every other rule first."""
        name = document["name"]
        with self._lock:
            self._refuse_file_rule(name, "change")
            existing = self._rule(name)
            if existing is not None and existing.kind != kind:
                raise Conflict(
                    f"alarm {name!r} is a {existing.kind} alarm; delete it first to replace "
                    f"it with a {kind} alarm",
                    details={"alarm": name, "kind": existing.kind},
                )
            ruleset = definitions.put_alarm(self._rules, kind, document)
            self.store.put_definition(name, {"kind": kind, "alarm": document}, self.now_ms())
            self.apply_rules(ruleset, [name])

    def delete_definition(self, name: str) -> None:
        """DeleteAlarms: 404 for an unknown alarm, 409 for a file alarm or while a composite
        references it."""
        with self._lock:
            self._refuse_file_rule(name, "delete")
            ruleset = definitions.remove_alarm(self._rules, name)
            self.store.delete_definition(name)
            self.apply_rules(ruleset, [name])

    def put_silence(self, document: dict[str, Any]) -> None:
        """Create or replace an API silence; 409 for a silence of a rule file."""
        with self._lock:
            silence_id = document["id"]
            self._refuse_file_silence(silence_id)
            ruleset = definitions.put_silence(self._rules, document)
            self.store.put_silence(silence_id, document, self.now_ms())
            self.apply_rules(ruleset, [])

    def delete_silence(self, silence_id: str) -> None:
        """Delete an API silence; 409 for a silence of a rule file, 404 for an unknown one."""
        with self._lock:
            self._refuse_file_silence(silence_id)
            if silence_id not in self.store.silences():
                raise NotFound(f"silence {silence_id!r} does not exist")
            ruleset = definitions.remove_silence(self._rules, silence_id)
            self.store.delete_silence(silence_id)
            self.apply_rules(ruleset, [])

    def _refuse_file_silence(self, silence_id: str) -> None:
        """A silence from a rule file is changed there, as a file alarm is (409, like alarms).

        Checked under the lock: a reload between the check and the change cannot slip by.
        """
        in_rules = any(silence.id == silence_id for silence in self._rules.silences)
        # An API silence is in the store as well as in the rules.
        if in_rules and silence_id not in self.store.silences():
            raise Conflict(
                f"silence {silence_id!r} is defined in a rule file; change it there",
                details={"silence": silence_id},
            )

    def _refuse_file_rule(self, name: str, verb: str) -> None:
        if self._rule(name) is None:
            return  # ``files`` names targets too, which are another namespace
        source = self._rules.files.get(name)
        if source is not None and source != API_SOURCE:
            raise Conflict(
                f"alarm {name!r} is defined in the rule file {source}; {verb} it there, then "
                "reload the rules (POST /api/v1/alarms/reload)",
                details={"alarm": name, "file": source},
            )

    def apply_rules(self, ruleset: RuleSet, names: Iterable[str] | None = None) -> None:
        """Reconcile states with ``ruleset``: create, update (state kept) and delete alarms;
        only ``names`` when given (the rest of ``ruleset`` is unchanged)."""
        with self._lock:
            now = self.now_ms()
            work = Round()
            found = reconcile(self._statuses, self._rule, ruleset, work, now, names)
            if found.deleted:
                self.store.delete_states(found.deleted)
            self._rules = ruleset
            self._pending_composites |= found.pending
            if names is None:
                self._pending_composites &= set(ruleset.composites)
            else:
                self._pending_composites -= set(found.deleted)
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
            work = Round()
            for name, instant in instants.items():
                alarm = rules.alarms[name]
                if self._rules.alarms.get(name) is not alarm:
                    continue  # reloaded while the metrics were read
                status = self._statuses[name]
                outcome = outcome_of(alarm, buckets[name], status.state, instant)
                apply_outcome(work, alarm, status, outcome, instant)
                work.evaluated.add(name)
            self._evaluate_composites(work, at_ms)
            self._settle(work, at_ms)
            self._commit(work, at_ms)
        return TickReport(
            at_ms, len(instants), len(work.transitioned), read_s, time.perf_counter() - started
        )

    def _evaluate_composites(self, work: Round, now: int) -> None:
        states = {name: status.state for name, status in self._statuses.items()}
        for name in self._rules.composite_order():
            rule = self._rules.composites[name]
            children = rule.parsed_rule.children
            if name not in self._pending_composites and work.transitioned.isdisjoint(children):
                continue
            self._pending_composites.discard(name)
            status = self._statuses[name]
            outcome = evaluate_composite(rule, states, status.state, now)
            apply_outcome(work, rule, status, outcome, now)
            work.evaluated.add(name)
            states[name] = status.state

    def _settle(self, work: Round, now: int) -> None:
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
            work = Round()
            if state != status.state:
                transition(work, rule, status, state, reason, reason_data, now)
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
        summary, data = delivery_note(outcome)
        at_ms = outcome.finished_ms
        with self._lock:
            rule = self._rule(alarm)
            kind = alarm_type(rule) if rule is not None else "MetricAlarm"
            work = Round()
            work.note(alarm, kind, at_ms, summary, data, "Action")
            status = self._statuses.get(alarm)
            run = status.runtime.scaling.get(target) if status is not None else None
            if status is not None and run is not None and delivery.event == "alarm.scaling":
                run.pending = False
                if outcome.ok:
                    run.success_ms = at_ms  # the cooldown starts at a successful invocation
                work.dirty[alarm] = status
            self._commit(work, at_ms)
        if not outcome.ok and self._publish is not None:
            self._publish(failure_datum(target, at_ms))

    # ---- internals

    def _rule(self, name: str) -> Rule | None:
        return self._rules.alarms.get(name) or self._rules.composites.get(name)

    def _commit(self, work: Round, now: int) -> None:
        """Deliveries, states and history in one transaction (``alarms.commit``), then the
        audit records. If the write fails, the states are read back, so memory never runs
        ahead of the store."""
        try:
            self._writer.persist(work, now)
        except Exception:
            self._statuses = self.store.load_states()
            raise
        self._writer.announce(work)

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
