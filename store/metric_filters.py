"""Log metric filters (spec metrics-and-alarms.md §4.1) in the DuckDB catalog.

Plain functions over a connection, like ``store.saved_queries``: the caller picks the thread
and holds whatever lock makes a check-then-write atomic. Validation of the pattern and the
metric transformation happens before (``ingest.metric_filters``); this module only stores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb
import orjson

from core.errors import BadRequest, NotFound

MAX_FILTERS_PER_GROUP = 100  # spec §4.1

METRIC_FILTERS_DDL = """
CREATE TABLE IF NOT EXISTS metric_filters (
    log_group VARCHAR NOT NULL,
    filter_name VARCHAR NOT NULL,
    filter_pattern VARCHAR NOT NULL,
    metric_namespace VARCHAR NOT NULL,
    metric_name VARCHAR NOT NULL,
    metric_value VARCHAR NOT NULL,
    default_value DOUBLE,
    dimensions VARCHAR NOT NULL,  -- JSON object: dimension name -> selector
    unit VARCHAR NOT NULL,
    created_ms BIGINT NOT NULL,
    disabled_reason VARCHAR,      -- set when the dimension guard switched the filter off
    PRIMARY KEY (log_group, filter_name)
)
"""

_COLUMNS = (
    "log_group, filter_name, filter_pattern, metric_namespace, metric_name, metric_value, "
    "default_value, dimensions, unit, created_ms, disabled_reason"
)


class MetricFilterLimitExceeded(BadRequest):
    """Raised when a log group already holds as many metric filters as it may."""

    code = "LimitExceededException"


@dataclass(frozen=True, slots=True)
class MetricFilter:
    """One filter and its single metric transformation."""

    log_group: str
    filter_name: str
    filter_pattern: str
    metric_namespace: str
    metric_name: str
    metric_value: str
    default_value: float | None = None
    dimensions: Mapping[str, str] = field(default_factory=dict)
    unit: str = "None"
    created_ms: int = 0
    disabled_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The native API's shape (DescribeMetricFilters' members in snake_case)."""
        transformation: dict[str, Any] = {
            "metric_namespace": self.metric_namespace,
            "metric_name": self.metric_name,
            "metric_value": self.metric_value,
            "unit": self.unit,
            "dimensions": dict(self.dimensions),
        }
        if self.default_value is not None:
            transformation["default_value"] = self.default_value
        return {
            "log_group": self.log_group,
            "filter_name": self.filter_name,
            "filter_pattern": self.filter_pattern,
            "metric_transformations": [transformation],
            "creation_time": self.created_ms,
            "disabled_reason": self.disabled_reason,
        }


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(METRIC_FILTERS_DDL)


def _row(f: MetricFilter) -> list[Any]:
    return [
        f.log_group,
        f.filter_name,
        f.filter_pattern,
        f.metric_namespace,
        f.metric_name,
        f.metric_value,
        f.default_value,
        orjson.dumps(dict(f.dimensions)).decode(),
        f.unit,
        f.created_ms,
        f.disabled_reason,
    ]


def _from_row(row: tuple[Any, ...]) -> MetricFilter:
    group, name, pattern, namespace, metric, value, default, dims, unit, created, reason = row
    return MetricFilter(
        group, name, pattern, namespace, metric, value, default, orjson.loads(dims), unit,
        created, reason,
    )  # fmt: skip


def put(
    conn: duckdb.DuckDBPyConnection,
    metric_filter: MetricFilter,
    *,
    max_per_group: int = MAX_FILTERS_PER_GROUP,
) -> tuple[MetricFilter, bool]:
    """Create or replace a filter; return it and whether it is new.

    Replacing keeps the creation time and clears ``disabled_reason`` (putting a filter again
    is how an operator switches it back on).
    """
    found = conn.execute(
        "SELECT created_ms FROM metric_filters WHERE log_group = ? AND filter_name = ?",
        [metric_filter.log_group, metric_filter.filter_name],
    ).fetchone()
    if found is None:
        (count,) = conn.execute(
            "SELECT count(*) FROM metric_filters WHERE log_group = ?", [metric_filter.log_group]
        ).fetchone() or (0,)
        if count >= max_per_group:
            raise MetricFilterLimitExceeded(
                f"log group {metric_filter.log_group!r} already has {count} metric filters, "
                f"the most it may have; delete one first",
                details={"log_group": metric_filter.log_group, "limit": max_per_group},
            )
        stored = replace(metric_filter, disabled_reason=None)
        conn.execute(
            f"INSERT INTO metric_filters ({_COLUMNS}) VALUES ({', '.join('?' * 11)})", _row(stored)
        )
        return stored, True
    stored = replace(metric_filter, created_ms=found[0], disabled_reason=None)
    conn.execute(
        "UPDATE metric_filters SET filter_pattern = ?, metric_namespace = ?, metric_name = ?, "
        "metric_value = ?, default_value = ?, dimensions = ?, unit = ?, disabled_reason = NULL "
        "WHERE log_group = ? AND filter_name = ?",
        [*_row(stored)[2:9], stored.log_group, stored.filter_name],
    )
    return stored, False


def list_filters(
    conn: duckdb.DuckDBPyConnection,
    *,
    log_group: str | None = None,
    name_prefix: str = "",
    metric_namespace: str | None = None,
    metric_name: str | None = None,
    after: tuple[str, str] | None = None,
    limit: int | None = None,
) -> list[MetricFilter]:
    """Filters in (log group, filter name) order, optionally after a position."""
    where, params = ["starts_with(filter_name, ?)"], list[Any]([name_prefix])
    if log_group is not None:
        where.append("log_group = ?")
        params.append(log_group)
    if metric_namespace is not None:
        where.append("metric_namespace = ?")
        params.append(metric_namespace)
    if metric_name is not None:
        where.append("metric_name = ?")
        params.append(metric_name)
    if after is not None:
        where.append("(log_group, filter_name) > (?, ?)")
        params += list(after)
    sql = (
        f"SELECT {_COLUMNS} FROM metric_filters WHERE {' AND '.join(where)} "
        "ORDER BY log_group, filter_name"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [_from_row(row) for row in conn.execute(sql, params).fetchall()]


def delete(conn: duckdb.DuckDBPyConnection, log_group: str, filter_name: str) -> None:
    row = conn.execute(
        "DELETE FROM metric_filters WHERE log_group = ? AND filter_name = ? RETURNING filter_name",
        [log_group, filter_name],
    ).fetchone()
    if row is None:
        raise NotFound(
            f"log group {log_group!r} has no metric filter named {filter_name!r}",
            details={"log_group": log_group, "filter_name": filter_name},
        )


def delete_group(conn: duckdb.DuckDBPyConnection, log_group: str) -> int:
    """Drop every filter of a deleted log group; return how many there were."""
    rows = conn.execute(
        "DELETE FROM metric_filters WHERE log_group = ? RETURNING filter_name", [log_group]
    ).fetchall()
    return len(rows)


def disable(conn: duckdb.DuckDBPyConnection, log_group: str, filter_name: str, reason: str) -> None:
    conn.execute(
        "UPDATE metric_filters SET disabled_reason = ? WHERE log_group = ? AND filter_name = ?",
        [reason, log_group, filter_name],
    )
