"""Which discovered fields become columns of a group, and which go to the overflow map.

The first ``MAX_PROMOTED_COLUMNS`` distinct field names a group sees are promoted to columns of
their own, so a query on ``user.id`` reads one typed Parquet column instead of parsing JSON; the
long tail goes to the ``fields`` map as rendered text. No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from store.schema import FIELDS_MAP_TYPE, MAX_PROMOTED_COLUMNS, RESERVED_NAMES, render_as_string


class FieldPromoter:
    """The set of promoted field names of one log group. Not thread-safe: the caller locks."""

    def __init__(self, promoted: Iterable[str] = (), *, limit: int = MAX_PROMOTED_COLUMNS) -> None:
        self.promoted: set[str] = set()
        # DuckDB column names are case-insensitive: a field ``MESSAGE`` beside the system
        # column ``message`` (or ``Host`` beside ``host``) would be renamed or shadowed, so
        # names are compared case-folded and the later spelling goes to the overflow map.
        self._taken = {name.casefold() for name in RESERVED_NAMES}
        self.limit = limit
        for name in promoted:
            if self._can_promote(name):
                self._promote(name)

    def shape(self, fields: pa.Table) -> tuple[list[tuple[str, pa.ChunkedArray]], pa.Array]:
        """Split a batch's discovered fields into promoted columns and the overflow map."""
        columns: list[tuple[str, pa.ChunkedArray]] = []
        overflow: list[tuple[str, pa.ChunkedArray]] = []
        for name, column in zip(fields.column_names, fields.columns, strict=True):
            if name not in self.promoted and self._can_promote(name):
                self._promote(name)
            if name in self.promoted:
                columns.append((name, column))
            else:
                overflow.append((name, column))
        return columns, _overflow_map(overflow, fields.num_rows)

    def _can_promote(self, name: str) -> bool:
        return name.casefold() not in self._taken and len(self.promoted) < self.limit

    def _promote(self, name: str) -> None:
        self.promoted.add(name)
        self._taken.add(name.casefold())


def _overflow_map(columns: list[tuple[str, pa.ChunkedArray]], num_rows: int) -> pa.Array:
    if not columns:
        offsets = pa.array([0] * (num_rows + 1), pa.int32())
        return pa.MapArray.from_arrays(
            offsets, pa.array([], pa.string()), pa.array([], pa.string())
        )
    # The overflow is the rare case (a group with hundreds of distinct fields), so clarity
    # wins over speed here.
    rendered = [(name, render_as_string(column).to_pylist()) for name, column in columns]
    rows = [
        [(name, values[i]) for name, values in rendered if values[i] is not None]
        for i in range(num_rows)
    ]
    return pa.array(rows, type=FIELDS_MAP_TYPE)
