"""Log metric filters at ingest (spec metrics-and-alarms.md §4.1-4.2).

``build_filter`` checks a PutMetricFilter request; ``MetricFilterRegistry`` keeps every group's
filters compiled in memory (reloaded on each change) and turns the events of an accepted batch
into rows of the metric table.

Matching runs in DuckDB over the batch's Arrow columns, with the predicates of
``ingest.filter_pattern.sql`` (a property test keeps them equal to the Python matcher): one query
per batch, whatever the number of events and filters. JSON values and dimensions are read in the
same query; only filters that read fields of a space-delimited pattern call the Python matcher,
and only on the events that matched. A group without filters costs one dict lookup.

What a filter publishes (WK): one sample per matching event at the event's timestamp, and
``default_value`` for each event that does not match; events outside the PutMetricData window
(14 days back, 2 hours ahead, spec §1.5) publish nothing, as with EMF. Samples are stored per
filter, minute and dimension set as ``values`` + ``counts`` (each distinct value once, 150 at
most per row), which keeps every statistic exact.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from core.errors import BadRequest, NotFound
from ingest.filter_pattern import (
    FilterPattern,
    SpacePattern,
    check_metric_transformation,
    compile_filter_sql,
    dimension_values,
    match,
    metric_sample,
    parse_filter_pattern,
)
from ingest.filter_pattern.metric import json_dimension_sql, json_number_sql
from ingest.filter_pattern.nodes import NUMBER
from store import metric_filters as catalog
from store.metric_filters import MetricFilter
from store.metric_model import (
    METRIC_SCHEMA,
    UNITS,
    datum_row,
    dimension_name_problem,
    dimension_value_problem,
    metric_name_problem,
    namespace_problem,
    value_problem,
)

__all__ = [
    "CompiledFilter",
    "MetricFilterRegistry",
    "build_filter",
    "compile_filter",
    "filter_metrics",
    "registry_for",
]

log = logging.getLogger(__name__)

MAX_FILTER_NAME_CHARS = 512
PAST_WINDOW_MS = 14 * 86_400_000  # spec §1.5, as for EMF
FUTURE_WINDOW_MS = 2 * 3_600_000
MAX_VALUES_PER_ROW = 150  # as a PutMetricData datum's Values
DIMENSION_SETS_PER_HOUR = 1000  # spec §4.1: CW disables a filter past this
Connect = Callable[[], duckdb.DuckDBPyConnection]


def build_filter(
    *,
    log_group: str,
    filter_name: str,
    filter_pattern: str,
    metric_namespace: str,
    metric_name: str,
    metric_value: str,
    default_value: float | None = None,
    dimensions: Mapping[str, str] | None = None,
    unit: str | None = None,
    now_ms: int,
) -> MetricFilter:
    """A checked filter (spec §4.1); ``BadRequest`` (``FilterPatternError``, with the column
    for a pattern) says what is wrong."""
    dimensions = dict(dimensions or {})
    unit = unit or "None"
    if not 1 <= len(filter_name) <= MAX_FILTER_NAME_CHARS or any(c in filter_name for c in ":*"):
        raise BadRequest(
            f"invalid filter name {filter_name[:80]!r}: use 1-{MAX_FILTER_NAME_CHARS} "
            "characters other than : and *",
            details={"filter_name": filter_name[:MAX_FILTER_NAME_CHARS]},
        )
    pattern = parse_filter_pattern(filter_pattern)
    for problem in (namespace_problem(metric_namespace), metric_name_problem(metric_name)):
        if problem:
            raise BadRequest(problem)
    if unit not in UNITS:
        raise BadRequest(
            f"unknown unit {unit!r}: use one of {', '.join(sorted(UNITS))}", details={"unit": unit}
        )
    for name in dimensions:
        if problem := dimension_name_problem(name):
            raise BadRequest(problem, details={"dimension": name})
    check_metric_transformation(pattern, metric_value, dimensions, default_value=default_value)
    if NUMBER.fullmatch(metric_value) and (problem := value_problem(float(metric_value))):
        raise BadRequest(f"metric_value: {problem}")
    if default_value is not None and (problem := value_problem(default_value)):
        raise BadRequest(f"default_value: {problem}")
    return MetricFilter(
        log_group=log_group,
        filter_name=filter_name,
        filter_pattern=filter_pattern,
        metric_namespace=metric_namespace,
        metric_name=metric_name,
        metric_value=metric_value,
        default_value=None if default_value is None else float(default_value),
        dimensions=dimensions,
        unit=unit,
        created_ms=now_ms,
    )


@dataclass(frozen=True, slots=True)
class CompiledFilter:
    """A stored filter with what applying it needs, computed once per change."""

    spec: MetricFilter
    pattern: FilterPattern
    predicate: str
    params: tuple[Any, ...]
    constant: float | None  # the metric value when it is a number
    reads_fields: bool  # the value or a dimension names a field of a space-delimited pattern


def compile_filter(spec: MetricFilter) -> CompiledFilter:
    pattern = parse_filter_pattern(spec.filter_pattern)
    predicate, params = compile_filter_sql(pattern, "message")
    constant = float(spec.metric_value) if NUMBER.fullmatch(spec.metric_value) else None
    reads_fields = isinstance(pattern, SpacePattern) and (constant is None or bool(spec.dimensions))
    return CompiledFilter(spec, pattern, predicate, tuple(params), constant, reads_fields)


@dataclass(slots=True)
class FilterOutput:
    """What one filter publishes for one batch."""

    rows: list[dict[str, Any]]
    dimension_sets: set[tuple[tuple[str, str], ...]]


Samples = defaultdict[tuple[int, tuple[tuple[str, str], ...]], Counter[float]]

# Spec §1.4 and §1.1 in SQL: what ``value_problem`` and ``dimension_value_problem`` accept.
_VALID_VALUE = "(isfinite(v) AND abs(v) <= 2.0 ^ 360 AND (v = 0 OR abs(v) >= 2.0 ^ -360))"
_VALID_DIMENSION = (
    "(length({d}) BETWEEN 1 AND 1024 AND regexp_full_match({d}, '[ -~]+') AND trim({d}) <> '')"
)


def filter_metrics(
    events: pa.Table,
    filters: Sequence[CompiledFilter],
    *,
    now_ms: int,
    conn: duckdb.DuckDBPyConnection,
) -> list[FilterOutput]:
    """What each filter publishes for ``events`` (columns ``ts_ms`` and ``message``)."""
    window = [now_ms - PAST_WINDOW_MS, now_ms + FUTURE_WINDOW_MS]
    cursor = conn.cursor()
    try:
        cursor.register("batch", events.select(["ts_ms", "message"]))
        outputs = []
        for f in filters:
            samples: Samples = defaultdict(Counter)
            if f.reads_fields:
                _sample_fields(f, cursor, window, samples)
            else:
                _sample_sql(f, cursor, window, samples)
            rows = [r for (minute, dims), c in samples.items() for r in _rows(f, minute, dims, c)]
            outputs.append(FilterOutput(rows, {dims for (_, dims) in samples if dims}))
        return outputs
    finally:
        cursor.close()


def _matched_sql(f: CompiledFilter) -> str:
    return (
        f"SELECT ts_ms - ts_ms % 60000 AS minute, message, ({f.predicate}) AS matched "
        "FROM batch WHERE ts_ms >= ? AND ts_ms <= ?"
    )


def _sample_sql(
    f: CompiledFilter, cursor: duckdb.DuckDBPyConnection, window: list[int], samples: Samples
) -> None:
    """Match and read values and dimensions in DuckDB; one result row per minute, match
    and dimension set, with each distinct value and how often it occurred."""
    params: list[Any] = []
    if f.constant is not None:
        value, params = "CAST(? AS DOUBLE)", [f.constant]
    else:
        value, params = json_number_sql(f.spec.metric_value)
    picks = [f"CASE WHEN matched THEN {value} END AS v"]
    names = list(f.spec.dimensions)
    for k, name in enumerate(names):
        dimension, dimension_params = json_dimension_sql(f.spec.dimensions[name])
        picks.append(f"CASE WHEN matched THEN {dimension} END AS d{k}")
        params += dimension_params
    dims = [f"d{k}" for k in range(len(names))]
    valid = " AND ".join([_VALID_VALUE, *(_VALID_DIMENSION.format(d=d) for d in dims)])
    keep = valid if f.spec.default_value is None else f"(NOT matched OR {valid})"
    group = ", ".join(["minute", "matched", *dims])
    sql = (
        f"SELECT {group}, list(v ORDER BY v), list(n ORDER BY v) FROM ("
        f"SELECT {group}, v, count(*) AS n FROM ("
        f"SELECT minute, matched, {', '.join(picks)} FROM ({_matched_sql(f)})"
        f") WHERE {keep} GROUP BY ALL) GROUP BY {group}"
    )
    for minute, matched, *found in cursor.execute(sql, [*params, *f.params, *window]).fetchall():
        *texts, values, counts = found
        if not matched:
            samples[(minute, ())][f.spec.default_value or 0.0] += sum(counts)
            continue
        key = (minute, tuple(sorted(zip(names, texts, strict=True))))
        for v, n in zip(values, counts, strict=True):
            samples[key][v] += n


def _sample_fields(
    f: CompiledFilter, cursor: duckdb.DuckDBPyConnection, window: list[int], samples: Samples
) -> None:
    """Space-delimited fields are read by the Python matcher, on the matching events only."""
    sql = (
        "SELECT minute, matched, CASE WHEN matched THEN message END, count(*) "
        f"FROM ({_matched_sql(f)}) GROUP BY ALL"
    )
    for minute, matched, message, n in cursor.execute(sql, [*f.params, *window]).fetchall():
        if not matched:
            if f.spec.default_value is not None:
                samples[(minute, ())][f.spec.default_value] += n
            continue
        result = match(f.pattern, message)
        sample = (
            f.constant if f.constant is not None else metric_sample(result, f.spec.metric_value)
        )
        if sample is None or value_problem(sample):
            continue
        dims = dimension_values(result, f.spec.dimensions)
        if dims is None or any(dimension_value_problem(v) for v in dims.values()):
            continue
        samples[(minute, tuple(sorted(dims.items())))][sample] += n


def _rows(
    f: CompiledFilter, minute: int, dims: tuple[tuple[str, str], ...], counts: Counter[float]
) -> list[dict[str, Any]]:
    values = sorted(counts)
    return [
        datum_row(
            namespace=f.spec.metric_namespace,
            metric_name=f.spec.metric_name,
            dimensions=dict(dims),
            ts_ms=minute,
            unit=f.spec.unit,
            values=chunk,
            counts=[float(counts[v]) for v in chunk],
        )
        for chunk in (
            values[i : i + MAX_VALUES_PER_ROW] for i in range(0, len(values), MAX_VALUES_PER_ROW)
        )
    ]


class MetricFilterRegistry:
    """Every log group's metric filters: stored in the catalog, compiled in memory.

    Reads (``filters_for``) are lock-free dict lookups; changes write the catalog under a lock
    and then replace the group's entry. ``connect`` returns a new cursor on the catalog.
    """

    def __init__(
        self,
        connect: Connect,
        *,
        max_filters_per_group: int = catalog.MAX_FILTERS_PER_GROUP,
        max_dimension_sets_per_hour: int = DIMENSION_SETS_PER_HOUR,
    ) -> None:
        self._connect = connect
        self.max_filters_per_group = max_filters_per_group
        self.max_dimension_sets_per_hour = max_dimension_sets_per_hour
        self._by_group: dict[str, tuple[CompiledFilter, ...]] = {}
        self._lock = threading.Lock()
        self._guard_lock = threading.Lock()
        # (group, filter) -> (hour_ms, dimension sets seen in that hour)
        self._dimension_sets: dict[tuple[str, str], tuple[int, set[Any]]] = {}
        self._duck = duckdb.connect()  # in memory: matching only, never the catalog

    def open(self) -> None:
        """Create the catalog table and load every filter."""
        with self._lock, self._connect() as conn:
            catalog.ensure_schema(conn)
            by_group: dict[str, list[CompiledFilter]] = defaultdict(list)
            for spec in catalog.list_filters(conn):
                if spec.disabled_reason is None:
                    by_group[spec.log_group].append(compile_filter(spec))
        self._by_group = {group: tuple(filters) for group, filters in by_group.items()}

    def close(self) -> None:
        self._duck.close()

    def filters_for(self, log_group: str) -> tuple[CompiledFilter, ...]:
        """The enabled filters of a group; ``()`` costs one dict lookup."""
        return self._by_group.get(log_group, ())

    # ---- changes ---------------------------------------------------------------------------

    def put(self, spec: MetricFilter) -> tuple[MetricFilter, bool]:
        """Create or replace a filter (``build_filter`` checked it); return it and if new."""
        with self._lock, self._connect() as conn:
            stored, created = catalog.put(conn, spec, max_per_group=self.max_filters_per_group)
            self._reload(conn, spec.log_group)
        with self._guard_lock:
            self._dimension_sets.pop((spec.log_group, spec.filter_name), None)
        return stored, created

    def delete(self, log_group: str, filter_name: str) -> None:
        with self._lock, self._connect() as conn:
            catalog.delete(conn, log_group, filter_name)
            self._reload(conn, log_group)

    def delete_group(self, log_group: str) -> int:
        """Forget the filters of a deleted log group."""
        with self._lock, self._connect() as conn:
            count = catalog.delete_group(conn, log_group)
            self._reload(conn, log_group)
        return count

    def describe(self, **criteria: Any) -> list[MetricFilter]:
        """``store.metric_filters.list_filters`` (disabled filters included)."""
        with self._connect() as conn:
            return catalog.list_filters(conn, **criteria)

    def _reload(self, conn: duckdb.DuckDBPyConnection, log_group: str) -> None:
        filters = tuple(
            compile_filter(spec)
            for spec in catalog.list_filters(conn, log_group=log_group)
            if spec.disabled_reason is None
        )
        if filters:
            self._by_group[log_group] = filters
        else:
            self._by_group.pop(log_group, None)

    # ---- applying --------------------------------------------------------------------------

    def metric_rows(self, log_group: str, events: pa.Table, *, now_ms: int) -> pa.Table:
        """The metric rows the group's filters publish for an accepted batch."""
        filters = self.filters_for(log_group)
        rows: list[dict[str, Any]] = []
        if filters:
            outputs = filter_metrics(events, filters, now_ms=now_ms, conn=self._duck)
            for f, output in zip(filters, outputs, strict=True):
                if output.dimension_sets and not self._within_guard(f.spec, output, now_ms):
                    continue
                rows += output.rows
        return pa.Table.from_pylist(rows, schema=METRIC_SCHEMA)

    def _within_guard(self, spec: MetricFilter, output: FilterOutput, now_ms: int) -> bool:
        """Spec §4.1: a filter that creates too many dimension sets in an hour is disabled."""
        hour_ms = now_ms - now_ms % 3_600_000
        key = (spec.log_group, spec.filter_name)
        with self._guard_lock:
            seen_hour, seen = self._dimension_sets.get(key, (hour_ms, set()))
            if seen_hour != hour_ms:
                seen = set()
            merged = seen | output.dimension_sets
            if len(merged) <= self.max_dimension_sets_per_hour:
                self._dimension_sets[key] = (hour_ms, merged)
                return True
            self._dimension_sets.pop(key, None)
        hour = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hour_ms / 1000))
        reason = (
            f"disabled: more than {self.max_dimension_sets_per_hour} distinct dimension "
            f"combinations within the hour starting {hour}; put the filter again to re-enable it"
        )
        log.warning("metric filter %r of %s %s", spec.filter_name, spec.log_group, reason)
        with self._lock, self._connect() as conn:
            catalog.disable(conn, spec.log_group, spec.filter_name, reason)
            self._reload(conn, spec.log_group)
        return False


_CREATE_LOCK = threading.Lock()


def registry_for(state: Any) -> MetricFilterRegistry:
    """The app's registry (``state.metric_filters``), opened on first use when start-up did
    not open one. Call it from a worker thread: the first call reads the catalog."""
    registry: MetricFilterRegistry | None = getattr(state, "metric_filters", None)
    if registry is not None:
        return registry
    with _CREATE_LOCK:
        registry = getattr(state, "metric_filters", None)
        if registry is None:
            registry = MetricFilterRegistry(state.store.cursor)
            registry.open()
            state.metric_filters = registry
    return registry


def require_group(has_group: Callable[[str], bool], log_group: str) -> None:
    if not has_group(log_group):
        raise NotFound(
            f"log group {log_group!r} does not exist: create it (PUT /api/v1/logs/groups/"
            f"{log_group}) or ingest into it first",
            details={"log_group": log_group},
        )
