"""What ``compile_query`` hands over: the SQL and how to read its answer. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from query import nodes as n
from query.nodes import Span
from query.values import Kind

__all__ = ["CompiledQuery", "OutputColumn", "Projection"]


@dataclass(frozen=True, slots=True)
class OutputColumn:
    name: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    """One statement for the rows and the statistics, and what the renderer needs to know.

    The answer of ``sql`` has, in order: one column per entry of ``columns``; recordsMatched
    when ``matched_in_rows``; then ``present`` (null on the single row an empty result gives);
    recordsScanned and bytesScanned when ``scanned_in_sql``; recordsMatched when
    ``matched_in_stats``. When none of these nor ``matched_below`` gives recordsMatched, it
    equals recordsScanned (no ``filter`` before the first ``stats``).
    """

    sql: str
    params: list[Any]
    columns: tuple[OutputColumn, ...]
    # recordsMatched in a statement of its own: for ``matched_after``, when the cap cuts
    # ``matched_below`` rows, and when ``matched_in_rows`` but a filter after stats left none.
    statistics_sql: str
    statistics_params: list[Any]
    regexes: tuple[tuple[str, Span], ...] = ()
    warnings: tuple[str, ...] = ()
    aggregated: bool = False
    matched_in_rows: bool = False
    matched_in_stats: bool = False
    # recordsMatched is the number of rows when there are fewer than this; otherwise
    # ``statistics_sql`` counts them (a filter, no stats, limit or dedup: counting in the
    # same statement would run the filter twice for every such query).
    matched_below: int | None = None
    # recordsMatched is counted apart by ``statistics_sql``, alongside the rows (a filter before
    # ``limit`` or ``dedup``, and a store that counts recordsScanned).
    matched_after: bool = False
    # False when the store counts recordsScanned and bytesScanned (``scanned_by_store``).
    scanned_in_sql: bool = True

    @property
    def hidden(self) -> int:
        """The index of the first column after the result columns and recordsMatched."""
        return len(self.columns) + int(self.matched_in_rows)


@dataclass(slots=True)
class Projection:
    """Which fields the output shows (spec §6.3), gathered while compiling."""

    fields: list[str] = field(default_factory=list)
    parsed: list[str] = field(default_factory=list)
    display: n.Display | None = None
    stats: list[str] = field(default_factory=list)
    after_stats: list[str] = field(default_factory=list)
