"""The errors a query can raise before any data is read (spec §14.1).

Both are ``MalformedQueryException`` (HTTP 400). Their details carry ``line`` and ``column``
(1-based) and the spec's ``queryCompileError`` with zero-based character offsets.

    BadRequest
    └── MalformedQuery
        ├── QuerySyntaxError   the text does not follow the grammar
        └── QueryError         it parses, but breaks a rule of the language
"""

from __future__ import annotations

from typing import Any

from core.errors import BadRequest
from query.nodes import Span


class MalformedQuery(BadRequest):
    """Raised when a query is refused at StartQuery, before any data is read."""

    code = "MalformedQueryException"

    def __init__(self, message: str, span: Span, **extra: Any) -> None:
        details: dict[str, Any] = {
            "line": span.line,
            "column": span.column,
            "queryCompileError": {
                "location": {"startCharOffset": span.start, "endCharOffset": span.end},
                "message": message,
            },
            **extra,
        }
        super().__init__(message, details=details)
        self.span = span

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def column(self) -> int:
        return self.span.column


class QuerySyntaxError(MalformedQuery):
    """Raised when the query text does not follow the grammar (spec §4-§5)."""


class QueryError(MalformedQuery):
    """Raised when a query parses but breaks a rule of the language (spec §6.2, §14.1)."""
