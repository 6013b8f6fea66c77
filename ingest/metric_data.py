"""PutMetricData bodies of the native API (spec metrics-and-alarms.md §1) -> metric-table rows.

A body is ``{"namespace": "...", "metric_data": [datum, ...]}`` where a datum has
``metric_name``, ``dimensions`` (an object of name/value pairs, or a list of
``{"name", "value"}``), ``timestamp`` (epoch ms or RFC 3339; default: when received), ``unit``,
``storage_resolution`` (60 or 1) and exactly one of ``value``, ``values`` (+ ``counts``) or
``statistic_values`` (``sample_count``, ``sum``, ``minimum``, ``maximum``).

Problems with the request as a whole (namespace, the list itself, its size) raise; a datum that
breaks a rule is rejected by index and the others are kept, as the native endpoint may (§1.5).
No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from core.errors import BadRequest
from core.metric_errors import InvalidParameterCombination, InvalidParameterValue, MissingParameter
from core.timeparse import parse_event_timestamp
from store.metric_model import (
    HIGH_RESOLUTION,
    METRIC_SCHEMA,
    STANDARD_RESOLUTION,
    UNITS,
    datum_row,
    metric_name_problem,
    namespace_problem,
    parse_dimensions,
    value_problem,
)

__all__ = [
    "MAX_DATUMS",
    "MAX_VALUES",
    "MetricBatch",
    "Rejection",
    "decode_metric_data",
    "load_document",
    "namespace_of",
]

MAX_DATUMS = 1_000  # spec §1.7
MAX_VALUES = 150
PAST_WINDOW_MS = 14 * 86_400_000  # spec §1.5
FUTURE_WINDOW_MS = 2 * 3_600_000
MAX_NAMES_IN_SUMMARY = 100

_REQUEST_FIELDS = frozenset({"namespace", "metric_data"})
_DATUM_FIELDS = frozenset(
    {
        "metric_name",
        "dimensions",
        "timestamp",
        "value",
        "values",
        "counts",
        "statistic_values",
        "unit",
        "storage_resolution",
    }
)
_STATISTIC_FIELDS = {
    "sample_count": "SampleCount",
    "sum": "Sum",
    "minimum": "Minimum",
    "maximum": "Maximum",
}


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    reason: str
    code: str  # the error code the datum alone would have had

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class MetricBatch:
    """The accepted rows (metric-table schema) and the rejected datums of one request."""

    namespace: str
    rows: pa.Table
    received: int
    rejected: list[Rejection] = field(default_factory=list)
    metric_names: list[str] = field(default_factory=list)

    def response(self) -> dict[str, Any]:
        return {"accepted": self.rows.num_rows, "rejected": [r.to_json() for r in self.rejected]}

    def audit_summary(self) -> dict[str, Any]:
        """Spec audit R5: a count and the distinct metric names, never the datapoints."""
        return {"metricDatumCount": self.received, "metricNames": self.metric_names}

    def raise_if_empty(self) -> None:
        """Every datum was rejected: the request fails with the first datum's error."""
        if self.rows.num_rows or not self.rejected:
            return
        first = self.rejected[0]
        error_class = _ERRORS.get(first.code, InvalidParameterValue)
        raise error_class(
            f"all {self.received} metric datums were rejected; the first, "
            f"metric_data[{first.index}]: {first.reason}",
            details={"index": first.index, "rejected": [r.to_json() for r in self.rejected]},
        )


class _Rejected(Exception):
    def __init__(self, error_class: type[BadRequest], reason: str) -> None:
        super().__init__(reason)
        self.code = error_class.code
        self.reason = reason


_ERRORS: dict[str, type[BadRequest]] = {
    cls.code: cls for cls in (InvalidParameterValue, InvalidParameterCombination, MissingParameter)
}


def load_document(body: bytes) -> dict[str, Any]:
    """The JSON object of a PutMetricData body."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidParameterValue(
            f'the body is not valid JSON ({exc}); send {{"namespace": "...", "metric_data": [...]}}'
        ) from None
    if not isinstance(document, dict):
        raise InvalidParameterValue(
            'the body must be a JSON object: {"namespace": "...", "metric_data": [...]}'
        )
    return document


def namespace_of(document: Mapping[str, Any]) -> str:
    """The namespace named by the body, checked (spec §1.1): what authorization needs."""
    namespace = document.get("namespace")
    if namespace is None:
        raise MissingParameter("namespace is required", details={"field": "namespace"})
    problem = namespace_problem(namespace)
    if problem is not None:
        raise InvalidParameterValue(problem, details={"field": "namespace"})
    assert isinstance(namespace, str)
    return namespace


def decode_metric_data(document: Mapping[str, Any], *, now_ms: int) -> MetricBatch:
    """Validate every datum; the rows of the valid ones, the others rejected by index."""
    namespace = namespace_of(document)
    unknown = sorted(document.keys() - _REQUEST_FIELDS)
    if unknown:
        raise InvalidParameterValue(
            f"unknown field {unknown[0]!r}: a PutMetricData body has namespace and metric_data",
            details={"field": unknown[0]},
        )
    items = document.get("metric_data")
    if items is None:
        raise MissingParameter("metric_data is required", details={"field": "metric_data"})
    if not isinstance(items, list):
        raise InvalidParameterValue("metric_data must be a list of metric datums")
    if not items:
        raise MissingParameter("metric_data holds no datum: send 1 to 1,000 of them")
    if len(items) > MAX_DATUMS:
        raise InvalidParameterValue(
            f"metric_data holds {len(items)} datums; a request may carry at most {MAX_DATUMS}",
            details={"limit": MAX_DATUMS},
        )
    rows: list[dict[str, Any]] = []
    rejected: list[Rejection] = []
    cache: dict[Any, dict[str, str]] = {}
    for index, item in enumerate(items):
        try:
            rows.append(_datum_row(item, namespace, now_ms, cache))
        except _Rejected as exc:
            rejected.append(Rejection(index, exc.reason, exc.code))
    names = sorted(
        {
            i["metric_name"]
            for i in items
            if isinstance(i, dict) and isinstance(i.get("metric_name"), str)
        }
    )
    return MetricBatch(
        namespace=namespace,
        rows=pa.Table.from_pylist(rows, schema=METRIC_SCHEMA),
        received=len(items),
        rejected=rejected,
        metric_names=names[:MAX_NAMES_IN_SUMMARY],
    )


def _datum_row(
    item: Any, namespace: str, now_ms: int, cache: dict[Any, dict[str, str]]
) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _Rejected(InvalidParameterValue, "a metric datum must be a JSON object")
    unknown = sorted(item.keys() - _DATUM_FIELDS)
    if unknown:
        raise _Rejected(
            InvalidParameterValue,
            f"unknown field {unknown[0]!r}; a datum has {', '.join(sorted(_DATUM_FIELDS))}",
        )
    name = item.get("metric_name")
    if name is None:
        raise _Rejected(MissingParameter, "metric_name is required")
    if problem := metric_name_problem(name):
        raise _Rejected(InvalidParameterValue, f"metric_name: {problem}")
    row_args: dict[str, Any] = {
        "namespace": namespace,
        "metric_name": name,
        "dimensions": _dimensions(item.get("dimensions"), cache),
        "ts_ms": _timestamp(item.get("timestamp"), now_ms),
        "unit": _unit(item.get("unit")),
        "storage_resolution": _resolution(item.get("storage_resolution")),
    }
    return datum_row(**row_args, **_values(item))


def _dimensions(raw: Any, cache: dict[Any, dict[str, str]]) -> dict[str, str]:
    # The datums of a request mostly share a few dimension sets: check each set once.
    key: Any = tuple(raw.items()) if isinstance(raw, dict) else None
    try:
        if key in cache:
            return cache[key]
    except TypeError:  # a value that is a list or an object: not hashable, and invalid
        key = None
    try:
        dimensions = parse_dimensions(raw)
    except ValueError as exc:
        raise _Rejected(InvalidParameterValue, str(exc)) from None
    if key is not None:
        cache[key] = dimensions
    return dimensions


def _timestamp(raw: Any, now_ms: int) -> int:
    if raw is None:
        return now_ms
    try:
        ts_ms = parse_event_timestamp(raw)
    except ValueError as exc:
        raise _Rejected(InvalidParameterValue, str(exc)) from None
    if ts_ms < now_ms - PAST_WINDOW_MS:
        raise _Rejected(
            InvalidParameterValue,
            "timestamp: must specify a time within the past two weeks (spec §1.5)",
        )
    if ts_ms > now_ms + FUTURE_WINDOW_MS:
        raise _Rejected(
            InvalidParameterValue,
            "timestamp: must not be more than two hours in the future (spec §1.5)",
        )
    return ts_ms


def _unit(raw: Any) -> str:
    if raw is None:
        return "None"
    if not isinstance(raw, str) or raw not in UNITS:
        raise _Rejected(
            InvalidParameterValue,
            f"unit: {str(raw)[:40]!r} is not a unit; use one of {', '.join(sorted(UNITS))}",
        )
    return raw


def _resolution(raw: Any) -> int:
    if raw is None:
        return STANDARD_RESOLUTION
    if isinstance(raw, bool) or raw not in (STANDARD_RESOLUTION, HIGH_RESOLUTION):
        raise _Rejected(
            InvalidParameterValue,
            f"storage_resolution: must be 60 (standard) or 1 (high resolution), not {raw!r}",
        )
    return int(raw)


def _values(item: Mapping[str, Any]) -> dict[str, Any]:
    """The datum_row arguments of the one value form the datum uses (spec §1.3)."""
    forms = [k for k in ("value", "values", "statistic_values") if item.get(k) is not None]
    if item.get("counts") is not None and "values" not in forms:
        raise _Rejected(InvalidParameterCombination, "counts is only allowed together with values")
    if len(forms) > 1:
        raise _Rejected(
            InvalidParameterCombination,
            f"give exactly one of value, values or statistic_values, not {' and '.join(forms)}",
        )
    if not forms:
        raise _Rejected(
            MissingParameter,
            "a datum needs value, values (with optional counts) or statistic_values",
        )
    if forms[0] == "value":
        return {"values": [_number("value", item["value"])]}
    if forms[0] == "values":
        return _value_list(item["values"], item.get("counts"))
    return {"statistic_values": _statistic_set(item["statistic_values"])}


def _number(where: str, raw: Any) -> float:
    if problem := value_problem(raw):
        raise _Rejected(InvalidParameterValue, f"{where}: {problem}")
    return float(raw)


def _value_list(values: Any, counts: Any) -> dict[str, Any]:
    if not isinstance(values, list) or not values:
        raise _Rejected(InvalidParameterValue, "values must be a non-empty list of numbers")
    if len(values) > MAX_VALUES:
        raise _Rejected(
            InvalidParameterValue,
            f"values holds {len(values)} entries; a datum may carry at most {MAX_VALUES}",
        )
    numbers = [_number(f"values[{j}]", v) for j, v in enumerate(values)]
    if counts is None:
        return {"values": numbers}
    if not isinstance(counts, list) or len(counts) != len(values):
        raise _Rejected(
            InvalidParameterValue,
            f"counts must be a list as long as values ({len(values)} entries)",
        )
    weights = []
    for j, count in enumerate(counts):
        weight = _number(f"counts[{j}]", count)
        if weight <= 0:
            raise _Rejected(InvalidParameterValue, f"counts[{j}]: must be above 0, not {count!r}")
        weights.append(weight)
    return {"values": numbers, "counts": weights}


def _statistic_set(raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise _Rejected(
            InvalidParameterValue,
            "statistic_values must be an object with sample_count, sum, minimum and maximum",
        )
    unknown = sorted(raw.keys() - _STATISTIC_FIELDS.keys())
    if unknown:
        raise _Rejected(
            InvalidParameterValue,
            f"statistic_values: unknown field {unknown[0]!r}; "
            "give sample_count, sum, minimum and maximum",
        )
    result: dict[str, float] = {}
    for key, name in _STATISTIC_FIELDS.items():
        if raw.get(key) is None:
            raise _Rejected(MissingParameter, f"statistic_values.{key} is required")
        result[name] = _number(f"statistic_values.{key}", raw[key])
    if result["SampleCount"] <= 0:
        raise _Rejected(InvalidParameterValue, "statistic_values.sample_count: must be above 0")
    if result["Minimum"] > result["Maximum"]:
        raise _Rejected(InvalidParameterValue, "statistic_values: minimum is greater than maximum")
    return result
