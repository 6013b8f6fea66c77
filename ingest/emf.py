"""Embedded Metric Format (spec metrics-and-alarms.md §3): metric rows out of a log event.

The event itself is always stored as a log; this module only decides which metric rows it
also yields, and what to count when it is malformed (§3.3):

- not EMF at all (no JSON object, or no root ``_aws`` member): nothing, no error;
- a JSON object mentioning ``"_aws"`` that does not parse, or whose ``_aws`` is not an object
  with an integer ``Timestamp`` and a ``CloudWatchMetrics`` array: one *parsing* error;
- a directive that breaks a rule of §3.1: that directive yields nothing and counts one
  *validation* error, the others are still extracted (decision D13). A timestamp outside the
  window of §1.5 invalidates every directive of the event.

The rows have the metric-table shape of ``store.metric_model.datum_row``. No I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from store.metric_model import (
    HIGH_RESOLUTION,
    MAX_DIMENSIONS,
    STANDARD_RESOLUTION,
    UNITS,
    datum_row,
    dimension_name_problem,
    dimension_value_problem,
    metric_name_problem,
    namespace_problem,
    value_problem,
)

__all__ = ["EmfExtraction", "extract_emf", "extract_emf_document"]

MAX_METRICS_PER_DIRECTIVE = 100
MAX_VALUES_PER_METRIC = 100
PAST_WINDOW_MS = 14 * 86_400_000  # spec §1.5
FUTURE_WINDOW_MS = 2 * 3_600_000


@dataclass(frozen=True, slots=True)
class EmfExtraction:
    """What one log event yields: metric rows, and the error counters of spec §3.3."""

    is_emf: bool
    rows: tuple[dict[str, Any], ...] = ()
    parsing_errors: int = 0
    validation_errors: int = 0
    problems: tuple[str, ...] = ()


_NOT_EMF = EmfExtraction(False)


class _Invalid(Exception):
    """A rule of §3.1 broken inside one directive."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def extract_emf(message: str, *, now_ms: int, allow_prefix: bool = False) -> EmfExtraction:
    """Extract the metrics of one log message (``allow_prefix``: a log group's emf_allow_prefix)."""
    if '"_aws"' not in message:
        return _NOT_EMF  # the cheap test that keeps plain events fast
    text = message.strip()
    if allow_prefix:
        # A runtime prefix such as "2026-01-01T00:00:00Z\tid\tINFO\t" before the JSON (spec §3.1).
        text = text[text.find("{") :] if "{" in text else text
    if not text.startswith("{"):
        return _NOT_EMF
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return EmfExtraction(True, parsing_errors=1, problems=("the event is not valid JSON",))
    if not isinstance(document, dict) or "_aws" not in document:
        return _NOT_EMF
    return extract_emf_document(document, now_ms=now_ms)


def extract_emf_document(document: Mapping[str, Any], *, now_ms: int) -> EmfExtraction:
    """Extract the metrics of an already parsed JSON object with a root ``_aws`` member."""
    aws = document.get("_aws")
    if not isinstance(aws, dict):
        return _parsing_error("_aws must be an object")
    timestamp = aws.get("Timestamp")
    if isinstance(timestamp, float) and timestamp.is_integer():
        timestamp = int(timestamp)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        return _parsing_error("_aws.Timestamp must be integer epoch milliseconds")
    directives = aws.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        return _parsing_error("_aws.CloudWatchMetrics must be an array")
    if not now_ms - PAST_WINDOW_MS <= timestamp <= now_ms + FUTURE_WINDOW_MS:
        problem = "_aws.Timestamp is more than 14 days in the past or 2 hours in the future"
        return EmfExtraction(True, validation_errors=len(directives), problems=(problem,))
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for index, directive in enumerate(directives):
        try:
            rows += _directive_rows(directive, document, timestamp)
        except _Invalid as invalid:
            problems.append(f"_aws.CloudWatchMetrics[{index}]: {invalid}")
    return EmfExtraction(True, tuple(rows), 0, len(problems), tuple(problems))


def _parsing_error(problem: str) -> EmfExtraction:
    return EmfExtraction(True, parsing_errors=1, problems=(problem,))


def _directive_rows(directive: object, root: Mapping[str, Any], ts_ms: int) -> list[dict[str, Any]]:
    if not isinstance(directive, dict):
        raise _Invalid("a metric directive must be an object")
    namespace = directive.get("Namespace")
    if problem := namespace_problem(namespace):
        raise _Invalid(problem)
    dimension_sets = [_dimension_set(s, root) for s in _array(directive, "Dimensions", 1, None)]
    metrics = [_metric(m, root) for m in _array(directive, "Metrics", 0, MAX_METRICS_PER_DIRECTIVE)]
    assert isinstance(namespace, str)
    return [
        datum_row(
            namespace=namespace,
            metric_name=name,
            dimensions=dimensions,
            ts_ms=ts_ms,
            unit=unit,
            storage_resolution=resolution,
            values=values,
        )
        for dimensions in dimension_sets
        for name, unit, resolution, values in metrics
    ]


def _array(directive: Mapping[str, Any], key: str, least: int, most: int | None) -> list[Any]:
    items = directive.get(key)
    if not isinstance(items, list):
        raise _Invalid(f"{key} must be an array")
    if len(items) < least or (most is not None and len(items) > most):
        limit = f"at least {least}" if most is None else f"at most {most}"
        raise _Invalid(f"{key} must hold {limit} entries, not {len(items)}")
    return items


def _dimension_set(keys: object, root: Mapping[str, Any]) -> dict[str, str]:
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise _Invalid("a dimension set must be an array of member names")
    if len(keys) > MAX_DIMENSIONS:
        raise _Invalid(f"a dimension set may name {MAX_DIMENSIONS} members, not {len(keys)}")
    if len(set(keys)) != len(keys):
        raise _Invalid(f"a dimension set names a member twice: {keys}")
    dimensions: dict[str, str] = {}
    for key in keys:
        if problem := dimension_name_problem(key):
            raise _Invalid(problem)
        if key not in root:
            raise _Invalid(f"the dimension {key!r} is not a member of the event")
        value = root[key]
        if problem := dimension_value_problem(value):
            raise _Invalid(f"the dimension {key!r}: {problem}")
        dimensions[key] = value
    return dimensions


def _metric(definition: object, root: Mapping[str, Any]) -> tuple[str, str, int, list[float]]:
    if not isinstance(definition, dict):
        raise _Invalid("a metric definition must be an object")
    name = definition.get("Name")
    if problem := metric_name_problem(name):
        raise _Invalid(problem)
    assert isinstance(name, str)
    unit = definition.get("Unit", "None")
    if not isinstance(unit, str) or unit not in UNITS:
        raise _Invalid(f"the metric {name!r} has an unknown unit {unit!r}")
    resolution = definition.get("StorageResolution", STANDARD_RESOLUTION)
    if isinstance(resolution, bool) or resolution not in (STANDARD_RESOLUTION, HIGH_RESOLUTION):
        raise _Invalid(f"the metric {name!r}: StorageResolution must be 1 or 60")
    if name not in root:
        raise _Invalid(f"the metric {name!r} is not a member of the event")
    member = root[name]
    values = member if isinstance(member, list) else [member]
    if not 1 <= len(values) <= MAX_VALUES_PER_METRIC:
        raise _Invalid(f"the metric {name!r} must hold 1 to {MAX_VALUES_PER_METRIC} values")
    for value in values:
        if problem := value_problem(value):
            raise _Invalid(f"the metric {name!r}: {problem}")
    return name, str(unit), int(resolution), [float(v) for v in values]
