"""Metric filters (spec §4.1-4.2): check a metric transformation against its pattern, then read
the sample and dimension values out of a ``MatchResult``. No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import BadRequest
from ingest.filter_pattern.matching import to_number
from ingest.filter_pattern.nodes import (
    NUMBER,
    FilterPattern,
    JsonPattern,
    MatchResult,
    SpacePattern,
)
from ingest.filter_pattern.parse import parse_filter_pattern, parse_selector

MAX_METRIC_VALUE_CHARS = 100
MAX_FILTER_DIMENSIONS = 3


def check_metric_transformation(
    pattern: FilterPattern | str,
    metric_value: str,
    dimensions: Mapping[str, str],
    *,
    default_value: float | None = None,
) -> None:
    """Refuse a metric value or dimension this pattern cannot fill (spec §4.1)."""
    if isinstance(pattern, str):
        pattern = parse_filter_pattern(pattern)
    if len(metric_value) > MAX_METRIC_VALUE_CHARS:
        raise BadRequest(f"metric_value may hold {MAX_METRIC_VALUE_CHARS} characters at most")
    if dimensions and default_value is not None:
        raise BadRequest("default_value and dimensions cannot be used together")
    if len(dimensions) > MAX_FILTER_DIMENSIONS:
        raise BadRequest(f"a metric filter may have {MAX_FILTER_DIMENSIONS} dimensions at most")
    if dimensions and not isinstance(pattern, JsonPattern | SpacePattern):
        raise BadRequest("dimensions need a JSON { } or space-delimited [ ] filter pattern")
    if not NUMBER.fullmatch(metric_value):
        _check_field_reference(pattern, "metric_value", metric_value)
    for name, selector in dimensions.items():
        _check_field_reference(pattern, f"dimension {name!r}", selector)


def _check_field_reference(pattern: FilterPattern, what: str, reference: str) -> None:
    if reference.startswith("$.") or reference.startswith("$["):
        if not isinstance(pattern, JsonPattern):
            raise BadRequest(f"{what} {reference!r} is a JSON selector: use a JSON {{ }} pattern")
        parse_selector(reference)
        return
    if reference.startswith("$") and isinstance(pattern, SpacePattern):
        names = {f"${s.name}" for s in pattern.slots if s.name is not None}
        names |= {f"${s.position}" for s in pattern.slots if s.name is not None}
        if reference in names:
            return
        raise BadRequest(
            f"{what} {reference!r} names no field of the pattern (fields: "
            + ", ".join(sorted(names))
            + ")"
        )
    raise BadRequest(
        f"{what} {reference!r} must be a number, a JSON selector such as $.latency or a field "
        "of a space-delimited pattern such as $bytes"
    )


def metric_selectors(metric_value: str, dimensions: Mapping[str, str]) -> tuple[str, ...]:
    """The JSON selectors to pass to ``match`` so that the sample and dimensions can be read."""
    wanted = [metric_value, *dimensions.values()]
    return tuple(w for w in wanted if w.startswith("$.") or w.startswith("$["))


def metric_sample(result: MatchResult, metric_value: str) -> float | None:
    """The sample a match publishes, or None when the value is not a number (spec §4.2)."""
    if NUMBER.fullmatch(metric_value):
        return to_number(metric_value)
    return to_number(result.fields.get(metric_value))


def dimension_values(result: MatchResult, dimensions: Mapping[str, str]) -> dict[str, str] | None:
    """Dimension name -> value for a match, or None when a selector reaches no scalar."""
    values: dict[str, str] = {}
    for name, selector in dimensions.items():
        found = result.fields.get(selector)
        if found is None or found == "":
            return None
        if isinstance(found, bool):
            values[name] = "true" if found else "false"
        else:
            values[name] = found if isinstance(found, str) else repr(found)
    return values


def duckdb_json_path(selector: str) -> str:
    """A JSON selector (``$.a.b[0]``) as a DuckDB JSON path, every key quoted."""
    path = parse_selector(selector).path
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f'."{p}"' for p in path)


def render_field(value: Any) -> str:
    """A field's value as TestMetricFilter shows it: text as is, other scalars as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value)


# The SQL readings below mirror ``metric_sample`` and ``dimension_values`` for JSON selectors,
# so that a batch's values are read in DuckDB rather than event by event in Python. Each returns
# a SQL expression over the raw ``message`` column and its ``?`` parameters in text order.
_NUMERIC_TYPES = "('BIGINT', 'UBIGINT', 'HUGEINT', 'DOUBLE')"


def json_number_sql(selector: str) -> tuple[str, list[Any]]:
    """The number a JSON selector reaches (as ``to_number``), or NULL."""
    path = duckdb_json_path(selector)
    number_re = NUMBER.pattern.replace("'", "''")
    sql = (
        f"(CASE WHEN json_type(message, ?) IN {_NUMERIC_TYPES} OR (json_type(message, ?) = "
        f"'VARCHAR' AND regexp_full_match(json_extract_string(message, ?), '{number_re}')) "
        "THEN TRY_CAST(json_extract_string(message, ?) AS DOUBLE) END)"
    )
    return sql, [path] * 4


def json_dimension_sql(selector: str) -> tuple[str, list[Any]]:
    """The text of the scalar a JSON selector reaches (as ``dimension_values``), or NULL."""
    path = duckdb_json_path(selector)
    sql = (
        "(CASE WHEN json_type(message, ?) = 'DOUBLE' "
        "THEN CAST(CAST(json_extract_string(message, ?) AS DOUBLE) AS VARCHAR) "
        f"WHEN json_type(message, ?) IN ('VARCHAR', 'BOOLEAN', {_NUMERIC_TYPES[1:-1]}) "
        "THEN json_extract_string(message, ?) END)"
    )
    return sql, [path] * 4
