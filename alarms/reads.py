"""What an alarm reads, and how its buckets become the datapoints ``evaluate`` takes. No I/O.

The scheduler gathers ``alarm_reads(alarm)`` of every due alarm into one batched
``query.metrics.alarm_reads.statistics(source, requests, anchor)`` call (all anchored at
``evaluate.anchor_ms(alarm, T)``), hands each alarm its slice of bucket lists and calls
``alarm_datapoints``; a math alarm's expression is evaluated over the evaluation range
(spec §5.10).
"""

from __future__ import annotations

from collections.abc import Sequence

from alarms.evaluate import Datapoint, anchor_ms
from alarms.rules import MetricAlarm
from core.metric_errors import MetricMathError
from query.metrics.alarm_reads import AlarmBucket, AlarmRead
from query.metrics.math import MathContext, evaluate_expressions
from query.metrics.series import Series

__all__ = ["alarm_datapoints", "alarm_reads"]


def alarm_reads(alarm: MetricAlarm) -> list[AlarmRead]:
    """One read per metric the alarm watches (one, or each metric entry of its query)."""
    length = alarm.range_length
    if alarm.metric is not None:
        assert alarm.statistic is not None
        metric = alarm.metric
        return [
            AlarmRead(
                metric.namespace,
                metric.name,
                metric.dimensions,
                alarm.statistic,
                alarm.period_s,
                length,
                metric.unit,
            )
        ]
    reads: list[AlarmRead] = []
    for entry in alarm.query or ():
        if entry.metric is not None:
            assert entry.statistic is not None
            reads.append(
                AlarmRead(
                    entry.metric.namespace,
                    entry.metric.name,
                    entry.metric.dimensions,
                    entry.statistic,
                    alarm.period_s,
                    length,
                    entry.metric.unit,
                )
            )
    return reads


def alarm_datapoints(
    alarm: MetricAlarm, buckets: Sequence[Sequence[AlarmBucket]], at_ms: int
) -> list[Datapoint]:
    """The watched series over the range, from the buckets of ``alarm_reads(alarm)`` in order.

    Raises ``MetricMathError`` when the expression cannot be evaluated or gives more than one
    series: the caller records ``EVALUATION_ERROR`` and leaves the state (spec §5.2).
    """
    if alarm.metric is not None:
        return [Datapoint(b.start_ms, b.value, b.sample_count) for b in buckets[0]]
    entries = alarm.query or []
    period_s = alarm.period_s
    metrics: dict[str, Series] = {}
    reads = iter(buckets)
    for entry in entries:
        if entry.metric is not None:
            metrics[entry.id] = Series.of(
                [(b.start_ms, b.value) for b in next(reads)], period_s, entry.label or entry.id
            )
    returned = next(e for e in entries if e.return_data)
    if returned.id in metrics:
        series = metrics[returned.id]
        return [Datapoint(t, v) for t, v in zip(series.timestamps, series.values, strict=True)]
    anchor = anchor_ms(alarm, at_ms)
    context = MathContext(
        metrics=metrics,
        expressions={e.id: e.expression for e in entries if e.expression is not None},
        start_ms=anchor - alarm.range_length * period_s * 1_000,
        end_ms=anchor,
        now_ms=at_ms,
        default_period_s=period_s,
    )
    result = evaluate_expressions(context, [returned.id])[returned.id]
    if isinstance(result, tuple):
        raise MetricMathError(
            f"the expression gives {len(result)} series; an alarm watches exactly one",
            query_id=returned.id,
        )
    return [Datapoint(t, v) for t, v in zip(result.timestamps, result.values, strict=True)]
