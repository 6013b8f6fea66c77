"""The metric table's row model (spec §1): identity rules, units, values, one row per datum.

Both the write path (``ingest``: PutMetricData, EMF, metric filters) and the read path
(``query.metrics``: statistics, metric math) use these rules; they live here, beside the store
that keeps the table, because imports run ``ingest/query -> store -> core``.

The metric table (DESIGN.md, Contracts) holds one row per datum: ``namespace``, ``metric_name``,
``dims``, ``dimensions``, ``ts_ms``, ``unit``, ``storage_resolution``, ``sample_count``, ``sum``,
``minimum``, ``maximum``, ``values``, ``counts``. A statistic set has empty ``values``/``counts``;
a single value ``v`` is ``[v]``/``[1]``. Three more columns describe rolled-up rows (spec §1.8,
``store.metric_rollup``) and are NULL on every raw row, so writers may leave them out:
``rollup_s`` (the bucket width the row stands for: 60, 300 or 3600), ``sketch_keys`` and
``sketch_counts`` (the log-bucket histogram of its samples, ``store.metric_sketch``; NULL when the
row merged a statistic set of several values, whose samples nobody knows). The store adds
``plain_samples`` to every row it writes (``mark_plain_samples``): true when the row's samples are
exactly its ``values``, each with count 1 (a raw row of one or more values and no other counts),
so that percentile reads can skip ``counts``, ``minimum`` and ``maximum`` for such rows; false
otherwise, and NULL in segments and WAL records written before it existed (read as "unknown").

``dims`` is the identity of a dimension set: ``name=value`` pairs sorted by name (code point
order) and joined with ``,``; a ``\\``, ``,`` or ``=`` inside a name or value is escaped with a
backslash, so that two different sets never share a string. ``{}`` is the empty string.
Example: ``{"Service": "api", "Host": "a,b"}`` -> ``Host=a\\,b,Service=api``.
No I/O here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "HIGH_RESOLUTION",
    "MAX_DIMENSIONS",
    "METRIC_SCHEMA",
    "STANDARD_RESOLUTION",
    "UNITS",
    "ROLLUP_COLUMNS",
    "canonical_dims",
    "conform_rows",
    "datum_row",
    "mark_plain_samples",
    "dimension_name_problem",
    "dimension_value_problem",
    "metric_name_problem",
    "namespace_problem",
    "parse_dimensions",
    "parse_dims",
    "truncate_timestamp",
    "value_problem",
]

UNITS = frozenset(
    {
        "Seconds", "Microseconds", "Milliseconds",
        "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
        "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
        "Percent", "Count",
        "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
        "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
        "Gigabits/Second", "Terabits/Second", "Count/Second",
        "None",
    }
)  # fmt: skip
STANDARD_RESOLUTION = 60
HIGH_RESOLUTION = 1
MAX_DIMENSIONS = 30
RESERVED_NAMESPACES = ("AWS/", "Watchkeep/")
MAX_MAGNITUDE = 2.0**360
MIN_MAGNITUDE = 2.0**-360

METRIC_SCHEMA = pa.schema(
    [
        ("namespace", pa.string()),
        ("metric_name", pa.string()),
        ("dims", pa.string()),
        ("dimensions", pa.map_(pa.string(), pa.string())),
        ("ts_ms", pa.int64()),
        ("unit", pa.string()),
        ("storage_resolution", pa.int32()),
        ("sample_count", pa.float64()),
        ("sum", pa.float64()),
        ("minimum", pa.float64()),
        ("maximum", pa.float64()),
        ("values", pa.list_(pa.float64())),
        ("counts", pa.list_(pa.float64())),
        ("rollup_s", pa.int32()),
        ("sketch_keys", pa.list_(pa.int32())),
        ("sketch_counts", pa.list_(pa.float64())),
        ("plain_samples", pa.bool_()),
    ]
)
# Appended last, so that segments written before roll-ups existed stay readable by name.
ROLLUP_COLUMNS = ("rollup_s", "sketch_keys", "sketch_counts")
# Columns a writer may leave out (NULL): the roll-up columns and the store's own flag.
OPTIONAL_COLUMNS = (*ROLLUP_COLUMNS, "plain_samples")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ESCAPE = re.compile(r"([\\,=])")
_UNESCAPE = re.compile(r"\\(.)", re.S)
_PAIR = re.compile(r"((?:\\.|[^=\\])*)=(.*)", re.S)


def _ascii_problem(what: str, text: object, max_chars: int) -> str | None:
    if not isinstance(text, str):
        return f"{what} must be a string"
    if not 1 <= len(text) <= max_chars:
        return f"{what} must have 1 to {max_chars} characters, not {len(text)}"
    if not text.isascii():
        return f"{what} must be ASCII"
    if _CONTROL.search(text):
        return f"{what} must not contain control characters"
    return None


def namespace_problem(namespace: object, *, allow_reserved: bool = False) -> str | None:
    """Why a namespace breaks spec §1.1, or None. ``AWS/`` and ``Watchkeep/`` are reserved."""
    problem = _ascii_problem("the namespace", namespace, 255)
    if problem is None and isinstance(namespace, str):
        if namespace.startswith(":"):
            return "the namespace must not start with ':'"
        if not allow_reserved and namespace.startswith(RESERVED_NAMESPACES):
            return f"the namespace {namespace!r} is reserved (AWS/ and Watchkeep/ are not writable)"
    return problem


def metric_name_problem(name: object) -> str | None:
    if not isinstance(name, str):
        return "the metric name must be a string"
    if not 1 <= len(name) <= 255:
        return f"the metric name must have 1 to 255 characters, not {len(name)}"
    return None


def dimension_name_problem(name: object) -> str | None:
    problem = _ascii_problem("a dimension name", name, 255)
    if problem is None and isinstance(name, str):
        if name.startswith(":"):
            return f"the dimension name {name!r} must not start with ':'"
        if not name.strip():
            return "a dimension name must hold a character other than whitespace"
    return problem


def dimension_value_problem(value: object) -> str | None:
    problem = _ascii_problem("a dimension value", value, 1024)
    if problem is None and isinstance(value, str) and not value.strip():
        return "a dimension value must hold a character other than whitespace"
    return problem


def value_problem(value: object) -> str | None:
    """Why a sample value breaks spec §1.4, or None (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{value!r} is not a number"
    try:
        number = float(value)
    except OverflowError:
        return f"{value!r} is larger than 2^360"
    if not math.isfinite(number):
        return f"{value!r} is not a finite number"
    if abs(number) > MAX_MAGNITUDE:
        return f"{value!r} is larger than 2^360 in magnitude"
    if number != 0 and abs(number) < MIN_MAGNITUDE:
        return f"{value!r} is closer to zero than 2^-360"
    return None


def parse_dimensions(raw: object) -> dict[str, str]:
    """A dimension set as the native API sends it, checked (spec §1.1); ValueError says why.

    Accepts an object (``{"Host": "a"}``), a list of ``{"name", "value"}`` objects (where a
    repeated name can be seen and is refused) or None (no dimensions).
    """
    if raw is None:
        return {}
    if isinstance(raw, dict):
        pairs = list(raw.items())
    elif isinstance(raw, list) and all(
        isinstance(p, dict) and p.keys() == {"name", "value"} for p in raw
    ):
        pairs = [(p["name"], p["value"]) for p in raw]
    else:
        raise ValueError(
            'dimensions must be an object such as {"Host": "a"} '
            'or a list such as [{"name": "Host", "value": "a"}]'
        )
    if len(pairs) > MAX_DIMENSIONS:
        raise ValueError(
            f"dimensions: {len(pairs)} dimensions; a metric has at most {MAX_DIMENSIONS}"
        )
    dimensions: dict[str, str] = {}
    for name, value in pairs:
        if problem := dimension_name_problem(name):
            raise ValueError(f"dimensions: {problem}")
        if problem := dimension_value_problem(value):
            raise ValueError(f"dimensions.{name}: {problem}")
        if name in dimensions:
            raise ValueError(f"dimensions: the name {name!r} appears more than once")
        dimensions[name] = value
    return dimensions


def canonical_dims(dimensions: Mapping[str, str]) -> str:
    """The identity string of a dimension set (see the module docstring)."""
    return ",".join(f"{_escape(name)}={_escape(dimensions[name])}" for name in sorted(dimensions))


def _escape(text: str) -> str:
    if "\\" in text or "," in text or "=" in text:
        return _ESCAPE.sub(r"\\\1", text)
    return text


def parse_dims(dims: str) -> dict[str, str]:
    """The inverse of ``canonical_dims``."""
    result: dict[str, str] = {}
    if not dims:
        return result
    for pair in re.findall(r"(?:\\.|[^,\\])+", dims):
        split = _PAIR.fullmatch(pair)
        if split is None:
            raise ValueError(f"not a canonical dims string: {dims!r}")
        name, value = split.groups()
        result[_UNESCAPE.sub(r"\1", name)] = _UNESCAPE.sub(r"\1", value)
    return result


def truncate_timestamp(ts_ms: int, storage_resolution: int) -> int:
    """Spec §1.5: standard data is stored on the minute, high-resolution data on the second."""
    step = 60_000 if storage_resolution == STANDARD_RESOLUTION else 1_000
    return ts_ms - ts_ms % step


def datum_row(
    *,
    namespace: str,
    metric_name: str,
    dimensions: Mapping[str, str],
    ts_ms: int,
    unit: str = "None",
    storage_resolution: int = STANDARD_RESOLUTION,
    values: Sequence[float] = (),
    counts: Sequence[float] | None = None,
    statistic_values: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """One row of the metric table for a datum that has already been validated.

    Give ``values`` (with optional ``counts``, each defaulting to 1) or ``statistic_values``
    (``SampleCount``, ``Sum``, ``Minimum``, ``Maximum``). The timestamp is truncated per §1.5.
    """
    row: dict[str, Any] = {
        "namespace": namespace,
        "metric_name": metric_name,
        "dims": canonical_dims(dimensions),
        "dimensions": dict(dimensions),
        "ts_ms": truncate_timestamp(ts_ms, storage_resolution),
        "unit": unit,
        "storage_resolution": storage_resolution,
    }
    if statistic_values is not None:
        return row | {
            "sample_count": float(statistic_values["SampleCount"]),
            "sum": float(statistic_values["Sum"]),
            "minimum": float(statistic_values["Minimum"]),
            "maximum": float(statistic_values["Maximum"]),
            "values": [],
            "counts": [],
        }
    if not values:
        raise ValueError("a datum needs values or statistic_values")
    weights = [1.0] * len(values) if counts is None else [float(c) for c in counts]
    if len(weights) != len(values):
        raise ValueError("values and counts differ in length")
    return row | {
        "sample_count": math.fsum(weights),
        "sum": math.fsum(v * c for v, c in zip(values, weights, strict=True)),
        "minimum": float(min(values)),
        "maximum": float(max(values)),
        "values": [float(v) for v in values],
        "counts": weights,
    }


def conform_rows(rows: pa.Table) -> pa.Table:
    """Rows in the metric table's column order and types; ValueError names what is missing.

    The roll-up columns and ``plain_samples`` may be absent (raw rows from writers and segments
    that predate them): they become NULL.
    """
    missing = [name for name in METRIC_SCHEMA.names if name not in rows.column_names]
    required = [name for name in missing if name not in OPTIONAL_COLUMNS]
    if required:
        raise ValueError(f"metric rows lack the columns {', '.join(required)}")
    for name in missing:
        rows = rows.append_column(
            METRIC_SCHEMA.field(name), pa.nulls(rows.num_rows, METRIC_SCHEMA.field(name).type)
        )
    return rows.select(METRIC_SCHEMA.names).cast(METRIC_SCHEMA)


def mark_plain_samples(rows: pa.Table) -> tuple[pa.Table, bool]:
    """``rows`` (of ``METRIC_SCHEMA``) with ``plain_samples`` computed from the rows themselves,
    and whether every row is plain (true for no rows).

    True when ``values`` is not empty, every count is exactly 1 (a missing ``counts`` list or
    count means 1, as the reads take it) and the row is raw (no histogram): then the samples are
    ``values`` and nothing else. Whatever a writer put in the column is replaced.
    """
    has_values = pc.fill_null(pc.greater(pc.list_value_length(rows.column("values")), 0), False)
    counts = rows.column("counts").combine_chunks()
    # Per row, how many of its counts are 1 (a null count is 1): a running total over the
    # flattened counts, read at the list offsets. A row is weighted when that falls short.
    ones = pc.cast(pc.fill_null(pc.equal(counts.values, 1.0), True), pa.int64())
    running = pa.concat_arrays([pa.array([0], pa.int64()), pc.cumulative_sum(ones)])
    ends, starts = counts.offsets[1:], counts.offsets[:-1]
    weighted = pc.not_equal(
        pc.subtract(pc.take(running, ends), pc.take(running, starts)),
        pc.subtract(ends, starts).cast(pa.int64()),
    )
    raw = pc.and_(pc.is_null(rows.column("sketch_keys")), pc.is_null(rows.column("rollup_s")))
    plain = pc.and_(pc.and_(has_values, pc.invert(weighted)), raw)
    index = rows.schema.get_field_index("plain_samples")
    all_plain = bool(pc.all(plain, min_count=0).as_py())
    return rows.set_column(index, METRIC_SCHEMA.field("plain_samples"), plain), all_plain
