"""Values of one statistic per row, straight from the Arrow result of a compiled statement.

``CompiledStatistics.first_statistic_series`` builds GetMetricData series from them without a
Python object per bucket. The row layout is ``CompiledStatistics.datapoints``'s. No I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from query.metrics.statistic import Simple, Statistic

__all__ = ["first_values"]


def first_values(table: pa.Table, first: Sequence[Statistic]) -> pa.Array:
    """Each row's value of ``first[query index]`` (null where ``datapoints`` has None)."""
    columns = [table.column(i).combine_chunks().cast(pa.float64()) for i in range(3, 7)]
    n, total, low, high = columns
    simple = {"SampleCount": n, "Sum": total, "Average": pc.divide(total, n), "Minimum": low}
    simple["Maximum"] = high
    kinds = [s.text if isinstance(s, Simple) else "" for s in first]
    kind = pc.take(pa.array(kinds, pa.string()), table.column(0).combine_chunks())
    value: pa.Array = pa.nulls(table.num_rows, pa.float64())
    for text in set(kinds):
        if text:
            value = pc.if_else(pc.equal(kind, text), simple[text], value)
    if table.num_columns > 7 and "" in kinds:
        ordered = table.column(7).combine_chunks()
        starts = ordered.offsets.slice(0, len(ordered))
        present = pc.and_(ordered.is_valid(), pc.greater(pc.list_value_length(ordered), 0))
        leading = pc.take(ordered.values, pc.if_else(present, starts, None))
        value = pc.if_else(pc.equal(kind, ""), leading.cast(pa.float64()), value)
    return value
