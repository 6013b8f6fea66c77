"""Filter patterns (spec metrics-and-alarms.md §4.3): parse, match in Python, compile to SQL.

One syntax serves FilterLogEvents (``compile_filter_sql``: a predicate over the raw ``message``
column that the store runs in DuckDB) and metric filters (``match``: run at ingest on each event,
returning the fields a metric value or dimension may name). Both readings follow the rules below,
and a property test keeps them equal. No I/O here.

Modules: ``nodes`` (the pattern's dataclasses, ``FilterPatternError``, shared regexes),
``parse`` (``grammar.lark`` -> nodes), ``matching`` (Python), ``sql`` (DuckDB) and ``metric``
(metric-filter value and dimension helpers).

Decisions the spec leaves open (WK):

- Space-delimited events split on runs of spaces, tabs and line breaks; a ``"..."`` or ``[...]``
  field counts as one and loses its enclosing quotes or brackets. ``$N`` names the N-th slot of
  the pattern (an ``...`` slot takes a number but holds no value). At most one ``...``.
- A condition whose value is a bare number (``> 5``, ``= 200``) compares numerically, against a
  JSON number or a string that is entirely a number; any other value (quoted, wildcarded, words)
  compares as text, and against JSON strings only (a JSON number is never equal to ``"200"``).
- ``*`` is a wildcard only as the first or last character of a value; ``= *`` matches any scalar.
- ``!=`` holds when the selector reaches a scalar that does not satisfy ``=``: a missing member,
  an object or an array satisfies neither ``=`` nor ``!=``.
- A JSON pattern never matches an event that is not a JSON object. (DuckDB reads a few
  malformed documents that Python's json refuses, such as trailing commas; on those the SQL
  predicate may match where ``match`` does not.)
"""

from ingest.filter_pattern.matching import match, to_number
from ingest.filter_pattern.metric import (
    MAX_FILTER_DIMENSIONS,
    MAX_METRIC_VALUE_CHARS,
    check_metric_transformation,
    dimension_values,
    metric_sample,
    metric_selectors,
)
from ingest.filter_pattern.nodes import (
    MAX_PATTERN_CHARS,
    FieldAll,
    FieldAny,
    FieldCompare,
    FieldExpr,
    FilterPattern,
    FilterPatternError,
    JsonAll,
    JsonAny,
    JsonCompare,
    JsonExpr,
    JsonPattern,
    JsonTest,
    MatchAll,
    MatchResult,
    Selector,
    Slot,
    SpacePattern,
    TextPattern,
    Value,
)
from ingest.filter_pattern.parse import parse_filter_pattern, parse_selector
from ingest.filter_pattern.sql import compile_filter_sql

__all__ = [
    "MAX_FILTER_DIMENSIONS",
    "MAX_METRIC_VALUE_CHARS",
    "MAX_PATTERN_CHARS",
    "FieldAll",
    "FieldAny",
    "FieldCompare",
    "FieldExpr",
    "FilterPattern",
    "FilterPatternError",
    "JsonAll",
    "JsonAny",
    "JsonCompare",
    "JsonExpr",
    "JsonPattern",
    "JsonTest",
    "MatchAll",
    "MatchResult",
    "Selector",
    "Slot",
    "SpacePattern",
    "TextPattern",
    "Value",
    "check_metric_transformation",
    "compile_filter_sql",
    "dimension_values",
    "match",
    "metric_sample",
    "metric_selectors",
    "parse_filter_pattern",
    "parse_selector",
    "to_number",
]
