"""What an alarm reads, and how its buckets become the datapoints ``evaluate`` takes.

``read_buckets`` gathers ``alarm_reads(alarm)`` of every due alarm into one batched
``query.metrics.alarm_reads.statistics(source, requests, anchor)`` call (all anchored at
``evaluate.anchor_ms(alarm, T)``) and hands each alarm its slice of bucket lists;
``outcome_of`` turns them into datapoints (``alarm_datapoints``: a math alarm's expression is
evaluated over the evaluation range, spec §5.10) and evaluates. They are the two halves of a
round, shared by the server's engine and ``alarms eval``; only ``read_buckets`` does I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from alarms.evaluate import Datapoint, Evaluation, anchor_ms, evaluate, evaluation_error
from alarms.rules import MetricAlarm
from core.errors import WatchkeepError
from core.metric_errors import MetricMathError
from query.metrics.alarm_reads import AlarmBucket, AlarmRead, statistics
from query.metrics.math import MathContext, evaluate_expressions
from query.metrics.reads import MetricSource
from query.metrics.series import Series

__all__ = ["Buckets", "alarm_datapoints", "alarm_reads", "outcome_of", "read_buckets"]

log = logging.getLogger(__name__)


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


Buckets = list[list[AlarmBucket]] | Exception


def read_buckets(
    source: MetricSource, alarms: Sequence[MetricAlarm], at_ms: int
) -> dict[str, Buckets]:
    """The buckets of every alarm's reads: one ``statistics`` call per anchor (anchors differ
    only for windows over a day); a failed call is the exception, for those alarms only."""
    groups: dict[int, list[tuple[str, list[AlarmRead]]]] = {}
    for alarm in alarms:
        groups.setdefault(anchor_ms(alarm, at_ms), []).append((alarm.name, alarm_reads(alarm)))
    out: dict[str, Buckets] = {}
    for anchor, group in groups.items():
        requests = [read for _, reads in group for read in reads]
        try:
            lists = iter(statistics(source, requests, anchor))
        except Exception as exc:  # one failing read must not stop the other alarms
            log.exception("alarm metric read failed for %d alarms", len(group))
            for name, _ in group:
                out[name] = exc
            continue
        for name, reads in group:
            out[name] = [next(lists) for _ in reads]
    return out


def outcome_of(
    alarm: MetricAlarm,
    buckets: Buckets,
    previous: str,
    at_ms: int,
) -> Evaluation:
    if isinstance(buckets, Exception):
        return evaluation_error(previous, f"Evaluation failed: {buckets}", failure=True)
    try:
        return evaluate(alarm, alarm_datapoints(alarm, buckets, at_ms), previous, at_ms)
    except WatchkeepError as exc:
        return evaluation_error(previous, f"Evaluation error: {exc.message}")
    except Exception as exc:  # a bug in one alarm's evaluation must not stop the round
        log.exception("evaluating alarm %s failed", alarm.name)
        return evaluation_error(previous, f"Evaluation failed: {exc}", failure=True)
