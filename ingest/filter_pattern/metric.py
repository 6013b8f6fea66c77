"""Metric filters (spec §4.1-4.2): check a metric transformation against its pattern, then read
the sample and dimension values out of a ``MatchResult``. No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping

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
