"""Reading metrics: period statistics in SQL and metric math (spec §1-§2).

The data model (``store.metric_model``) and the errors (``core.metric_errors``) are re-exported
here for convenience.

Pure code: SQL text and parameters go out, the store runs them (DESIGN.md). Typical use::

    window = plan_window(start_ms, end_ms, period_s, now_ms, max_datapoints=1440)
    query = StatisticsQuery(namespace, name, canonical_dims(dimensions), window,
                            (parse_statistic("Average"), parse_statistic("p99")))
    compiled = compile_statistics([query])
    datapoints = compiled.datapoints(run(compiled.sql, compiled.params))[0]
"""

from core.metric_errors import (
    InvalidParameterCombination,
    InvalidParameterValue,
    MetricMathError,
    MissingParameter,
)
from query.metrics.math import MathContext, SeriesResult, evaluate_expressions
from query.metrics.math_parse import check_query_id, parse_expression, references
from query.metrics.series import Series
from query.metrics.statistic import (
    SIMPLE_STATISTICS,
    Percentile,
    Simple,
    Statistic,
    Trimmed,
    parse_statistic,
    parse_statistics_request,
)
from query.metrics.statistics import (
    CompiledStatistics,
    Datapoint,
    StatisticsQuery,
    compile_statistics,
    datapoints_to_series,
)
from query.metrics.window import (
    MAX_STATISTICS_DATAPOINTS,
    Tiers,
    Window,
    check_period,
    plan_window,
    round_start,
)
from store.metric_model import (
    METRIC_SCHEMA,
    UNITS,
    canonical_dims,
    datum_row,
    dimension_name_problem,
    dimension_value_problem,
    metric_name_problem,
    namespace_problem,
    parse_dims,
    truncate_timestamp,
    value_problem,
)

__all__ = [
    "MAX_STATISTICS_DATAPOINTS",
    "METRIC_SCHEMA",
    "SIMPLE_STATISTICS",
    "UNITS",
    "CompiledStatistics",
    "Datapoint",
    "InvalidParameterCombination",
    "InvalidParameterValue",
    "MathContext",
    "MetricMathError",
    "MissingParameter",
    "Percentile",
    "Series",
    "SeriesResult",
    "Simple",
    "Statistic",
    "StatisticsQuery",
    "Tiers",
    "Trimmed",
    "Window",
    "canonical_dims",
    "check_period",
    "check_query_id",
    "compile_statistics",
    "datapoints_to_series",
    "datum_row",
    "dimension_name_problem",
    "dimension_value_problem",
    "evaluate_expressions",
    "metric_name_problem",
    "namespace_problem",
    "parse_dims",
    "parse_expression",
    "parse_statistic",
    "parse_statistics_request",
    "plan_window",
    "references",
    "round_start",
    "truncate_timestamp",
    "value_problem",
]
