"""One evaluation of every alarm at an instant, for ``watchkeep alarms eval`` (DESIGN.md, CLI).

Each alarm starts from the given state (default: freshly created, INSUFFICIENT_DATA); metric
alarms are evaluated first, whether or not ``at`` is one of their scheduled instants, then
composites in dependency order from their children's new states. The metric reads are the
server's: ``read_buckets`` over a ``MetricSource`` anchored at ``at``, so the answer on old
data is what the server's tick gave at that instant.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alarms.evaluate import Evaluation, evaluate_composite
from alarms.reads import outcome_of, read_buckets
from alarms.rules import RuleSet
from alarms.state import iso_ms
from query.metrics.reads import MetricSource

__all__ = ["evaluate_once"]


def evaluate_once(
    rules: RuleSet, source: MetricSource, at_ms: int, states: Mapping[str, str]
) -> list[dict[str, Any]]:
    """``[{"name", "kind", "state", "reason", "reason_data", "datapoints"}]`` in rule order."""
    unknown = sorted(set(states) - set(rules.alarms) - set(rules.composites))
    if unknown:
        raise ValueError(f"--state names {', '.join(unknown)}, which is not an alarm")
    current = {name: states.get(name, "INSUFFICIENT_DATA") for name in rules.alarms}
    current |= {name: states.get(name, "INSUFFICIENT_DATA") for name in rules.composites}
    results: dict[str, tuple[str, Evaluation]] = {}
    buckets = read_buckets(source, list(rules.alarms.values()), at_ms)
    for name, alarm in rules.alarms.items():
        outcome = outcome_of(alarm, buckets[name], current[name], at_ms)
        current[name] = outcome.state
        results[name] = ("metric", outcome)
    for name in rules.composite_order():
        outcome = evaluate_composite(rules.composites[name], current, current[name], at_ms)
        current[name] = outcome.state
        results[name] = ("composite", outcome)
    return [_json(name, kind, outcome) for name, (kind, outcome) in results.items()]


def _json(name: str, kind: str, outcome: Evaluation) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "state": outcome.state,
        "reason": outcome.reason,
        "reason_data": outcome.reason_data,
        "datapoints": [
            {"timestamp": iso_ms(p.start_ms), "value": p.value, "sample_count": p.sample_count}
            for p in outcome.datapoints_used
        ],
    }
    if outcome.kept:
        entry["kept"] = True  # the state was left as it was (e.g. treat_missing_data: ignore)
    if outcome.evaluation_state is not None:
        entry["evaluation_state"] = outcome.evaluation_state
    return entry
