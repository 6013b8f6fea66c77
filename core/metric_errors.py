"""Errors of the metric API (spec metrics-and-alarms.md §1.7, §2): CloudWatch's names, HTTP 400.

They live in ``core`` because both ``ingest`` (PutMetricData) and ``query.metrics`` raise them.

BadRequest
├── InvalidParameterValue          a value breaks a rule (unit, period, window, statistic...)
│   └── MetricMathError            a metric-math expression is wrong; details carry the column
├── InvalidParameterCombination    fields that exclude each other, or none of a required set
└── MissingParameter               a required field is absent
"""

from __future__ import annotations

from typing import Any

from core.errors import BadRequest


class InvalidParameterValue(BadRequest):
    """Raised when a parameter has a value the metric API does not accept."""

    code = "InvalidParameterValueException"


class InvalidParameterCombination(BadRequest):
    """Raised when parameters that exclude each other are given together, or none of them."""

    code = "InvalidParameterCombinationException"


class MissingParameter(BadRequest):
    """Raised when a required parameter is absent."""

    code = "MissingParameterException"


class MetricMathError(InvalidParameterValue):
    """Raised when a metric-math expression does not parse or cannot be evaluated (spec §2.6)."""

    def __init__(
        self, message: str, *, query_id: str | None = None, column: int | None = None, **extra: Any
    ) -> None:
        details: dict[str, Any] = dict(extra)
        where = ""
        if query_id is not None:
            details["id"] = query_id
            where = f"in expression {query_id}"
        if column is not None:
            details["column"] = column
            where += f"{' ' if where else ''}at column {column}"
        super().__init__(f"{message} ({where})" if where else message, details=details)
        self.reason = message
        self.query_id = query_id
        self.column = column
