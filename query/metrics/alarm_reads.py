"""How alarms read metrics (DESIGN.md, Contracts): ``statistics(source, requests, at_ms)``.

One batched call per evaluation tick: every alarm's evaluation range becomes one
``StatisticsQuery`` and all of them one SQL statement (``compile_statistics``, which shares a scan
between reads with the same window). The buckets are sliding, anchored at the evaluation
instant (spec §5.3): the bucket of age ``k`` is ``[at - k*P, at - (k-1)*P)``, so the range of
``L`` buckets is ``[at - L*P, at)``, never rounded as GetMetricStatistics rounds its start. The
"too old" rule of §1.8 is measured from ``at`` as well, never from the wall clock, so that
``alarms eval --at`` gives on old data exactly what the tick gave at the time.

``compile_alarm_reads`` is pure; ``statistics`` runs it on a metric source (the MetricStore).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.metric_errors import InvalidParameterValue
from query.metrics.reads import MetricSource
from query.metrics.statistic import parse_statistic
from query.metrics.statistics import CompiledStatistics, StatisticsQuery, compile_statistics
from query.metrics.window import DEFAULT_TIERS, Tiers, Window, check_period
from store.metric_model import UNITS, canonical_dims
from store.metric_sql import METRIC_ROWS

__all__ = [
    "AlarmBucket",
    "AlarmRead",
    "CompiledAlarmReads",
    "compile_alarm_reads",
    "statistics",
]


@dataclass(frozen=True, slots=True)
class AlarmRead:
    """One alarm's metric, statistic (``Average``, ``p99``...), period and range length."""

    namespace: str
    metric_name: str
    dimensions: Mapping[str, str]
    statistic: str
    period_s: int
    buckets: int  # L, the evaluation range (spec §5.5.1: N + 2 by default)
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class AlarmBucket:
    """One bucket of the range that has a datapoint."""

    start_ms: int
    value: float
    sample_count: float
    unit: str  # "None" when the bucket mixes units


@dataclass(frozen=True, slots=True)
class CompiledAlarmReads:
    sql: str
    params: list[Any]
    start_ms: int  # the rows the statement needs: [start_ms, end_ms)
    end_ms: int
    compiled: CompiledStatistics | None = field(repr=False, default=None)
    slots: tuple[int, ...] = ()  # request index of each compiled query

    def buckets(self, rows: Iterable[Sequence[Any]], count: int) -> list[list[AlarmBucket]]:
        """Ascending buckets per request, from the rows of ``sql``; ``count`` requests.

        A bucket whose statistic cannot be computed (an order statistic over statistic sets of
        several values, spec §1.3) has no datapoint, like an empty one (spec §5.3).
        """
        out: list[list[AlarmBucket]] = [[] for _ in range(count)]
        if self.compiled is None:
            return out
        slots = self.slots
        for query_index, start_ms, unit, n, value in self.compiled.first_statistic(rows):
            if value is not None:
                out[slots[query_index]].append(AlarmBucket(start_ms, value, n, unit))
        return out


def compile_alarm_reads(
    requests: Sequence[AlarmRead], at_ms: int, *, tiers: Tiers = DEFAULT_TIERS
) -> CompiledAlarmReads:
    """One statement for the ranges of every request, all anchored at ``at_ms``."""
    queries: list[StatisticsQuery] = []
    slots: list[int] = []
    for index, request in enumerate(requests):
        window = _range(request, at_ms, tiers)
        if window.readable_from_ms >= window.end_ms:
            continue  # every bucket is older than the data tiers keep
        if request.unit is not None and request.unit not in UNITS:
            raise InvalidParameterValue(f"unknown unit {request.unit!r}")
        queries.append(
            StatisticsQuery(
                request.namespace,
                request.metric_name,
                canonical_dims(request.dimensions),
                window,
                (parse_statistic(request.statistic),),
                request.unit,
            )
        )
        slots.append(index)
    if not queries:
        return CompiledAlarmReads("", [], at_ms, at_ms)
    compiled = compile_statistics(queries, METRIC_ROWS)
    return CompiledAlarmReads(
        compiled.sql,
        compiled.params,
        min(q.window.readable_from_ms for q in queries),
        at_ms,
        compiled,
        tuple(slots),
    )


def statistics(
    source: MetricSource, requests: Sequence[AlarmRead], at_ms: int
) -> list[list[AlarmBucket]]:
    """The buckets with a datapoint of each request's evaluation range, as of ``at_ms``."""
    compiled = compile_alarm_reads(requests, at_ms)
    if compiled.compiled is None:
        return [[] for _ in requests]
    table = source.query(
        compiled.start_ms,
        compiled.end_ms,
        compiled.sql,
        compiled.params,
        all_plain=compiled.compiled.all_plain,
    )
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return compiled.buckets(zip(*columns, strict=True), len(requests))


def _range(request: AlarmRead, at_ms: int, tiers: Tiers) -> Window:
    period_s = check_period(request.period_s)
    if request.buckets < 1:
        raise InvalidParameterValue("an evaluation range holds at least one bucket")
    period_ms = period_s * 1_000
    start_ms = at_ms - request.buckets * period_ms
    oldest_ms = at_ms - _horizon_ms(period_s, tiers)
    readable = start_ms
    if oldest_ms > start_ms:  # the first bucket that starts at or after the horizon
        readable = start_ms + -(-(oldest_ms - start_ms) // period_ms) * period_ms
    return Window(start_ms, at_ms, period_s, readable)


def _horizon_ms(period_s: int, tiers: Tiers) -> int:
    """How far back the finest tier that can answer this period reaches (spec §1.8)."""
    if period_s % 3_600 == 0:
        return tiers.hour_ms
    if period_s % 300 == 0:
        return tiers.five_minutes_ms
    if period_s % 60 == 0:
        return tiers.minute_ms
    return tiers.sub_minute_ms
