"""Reconciling alarm states with a new rule set: create, update (state kept) and delete, each
with its ConfigurationUpdate history item (spec §5.1, §5.9, §6.1). No I/O.

A whole load reconciles every alarm; a put or delete through the API only the alarm it names,
so that its cost does not grow with the number of alarms.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

import orjson

from alarms.actions import alarm_type
from alarms.rounds import Round, Rule
from alarms.rules import CompositeAlarm, RuleSet
from alarms.state import AlarmStatus

__all__ = ["Reconciled", "reconcile"]


class Reconciled:
    """What ``reconcile`` found: the alarms deleted and the composites to evaluate."""

    __slots__ = ("deleted", "pending")

    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.pending: set[str] = set()  # composites new or changed: evaluate at the next tick


def reconcile(
    statuses: MutableMapping[str, AlarmStatus],
    previous: Callable[[str], Rule | None],
    ruleset: RuleSet,
    work: Round,
    now: int,
    names: Iterable[str] | None = None,
) -> Reconciled:
    """Bring ``statuses`` in line with ``ruleset`` for ``names`` (default: every alarm).

    ``previous`` looks a name up in the rules being replaced, for the history's
    ``originalAlarm``.
    """
    found = Reconciled()
    if names is None:
        wanted: dict[str, Rule] = {**ruleset.alarms, **ruleset.composites}
        gone = list(statuses)
    else:
        gone = [name for name in names if name in statuses]
        wanted = {}
        for name in names:
            if (rule := ruleset.alarms.get(name) or ruleset.composites.get(name)) is not None:
                wanted[name] = rule
    for name in gone:
        status = statuses[name]
        rule = wanted.get(name)
        if rule is None or rule.kind != status.kind:
            kind = "CompositeAlarm" if status.kind == "composite" else "MetricAlarm"
            data: dict[str, Any] = {"type": "Delete", "version": "1.0"}
            if (old := previous(name)) is not None:
                data["originalAlarm"] = rule_json(old)
            work.note(name, kind, now, f'Alarm "{name}" deleted', data)
            del statuses[name]
            found.deleted.append(name)
    for name, rule in wanted.items():
        digest = _config_hash(rule)
        existing = statuses.get(name)
        if existing is None:
            status = statuses[name] = AlarmStatus(name, rule.kind, now)
            data = {"type": "Create", "version": "1.0", "updatedAlarm": rule_json(rule)}
            work.note(name, alarm_type(rule), now, f'Alarm "{name}" created', data)
        elif (status := existing).runtime.config_hash != digest:
            data = {"type": "Update", "version": "1.0", "updatedAlarm": rule_json(rule)}
            if (old := previous(name)) is not None:
                data["originalAlarm"] = rule_json(old)
            work.note(name, alarm_type(rule), now, f'Alarm "{name}" updated', data)
            # A put replaces the whole configuration (spec §5.1): actions follow the rule
            # again. Nothing is replayed: while disabled, each state counted as announced;
            # held announcements (wait period, silence) stay due.
            status.runtime.actions_enabled = None
        else:
            continue
        status.runtime.config_hash = digest
        work.dirty[name] = status
        if isinstance(rule, CompositeAlarm):
            found.pending.add(name)
    return found


def rule_json(rule: Rule) -> dict[str, Any]:
    return rule.model_dump(mode="json", by_alias=True, exclude_none=True)


def _config_hash(rule: Rule) -> str:
    text = orjson.dumps({"kind": rule.kind, **rule_json(rule)}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()[:16]
