"""Roll-up of the metric table into coarser tiers (spec §1.8), merged in DuckDB.

Tiers, with the horizons of ``store.metric_config.Tiers``:

    raw rows (values exact)  --3 h, high-resolution rows only-->  60 s
    raw rows, 60 s rows      --15 days-->                        300 s
    300 s rows               --63 days-->                        3600 s   (dropped after 455 days
                                                                           by ``apply_retention``)

A rolled-up row is one (metric, unit, bucket) of its tier: exact ``sample_count``, ``sum``,
``minimum`` and ``maximum``, empty ``values``/``counts``, ``rollup_s`` set to the tier, and the
log-bucket histogram of its samples in ``sketch_keys``/``sketch_counts`` (``store.metric_sketch``),
so that order statistics stay answerable within 1 %. Units stay apart, so a read still sees the
unit mix (spec §1.9).

The job works one UTC day partition at a time, and only on whole days past a horizon: a day
goes straight to the coarsest tier it has passed (merging is associative, so raw -> 3600 s equals
raw -> 300 s -> 3600 s). Its source segments are those whose finest rows are finer than the
target (``MetricSegment.resolution_s``); their rows already at or above the target are copied
unchanged. Crash safety is the compactor's: the new segments are written first, then one
catalog transaction swaps source for result; a crash before the commit leaves files that no
catalog row names (deleted at the next open), a crash after it leaves the old files likewise.
A datum is therefore counted in exactly one tier at every instant, and a second run finds no
work. Late raw rows for a day that was already rolled up are rolled up at the next run.

``plan_rollups`` and ``rollup_sql`` are pure; ``rolled_rows`` runs the SQL over one task's
segments. ``store.metrics.MetricStore.roll_up`` holds the locks and swaps the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from store.metric_catalog import MetricSegment
from store.metric_config import ROLLUP_RESOLUTIONS_S, Tiers
from store.metric_lake import DAY_MS
from store.metric_model import STANDARD_RESOLUTION, conform_rows
from store.metric_sketch import opaque_sql, sketch_points_sql

__all__ = [
    "ROLLUP_RESOLUTIONS_S",
    "RollupHook",
    "RollupTask",
    "plan_rollups",
    "rolled_rows",
    "rollup_sql",
    "target_resolution",
]

SOURCE = "wk_rollup_source"
# Called with "written" (new segments on disk, catalog untouched) and "inserted" (inside the
# catalog transaction, new segments added, sources not yet removed): tests raise there to
# simulate a crash between the steps.
RollupHook = Callable[[str], None]
_GROUP = ("namespace", "metric_name", "dims", "ts_ms", "unit")


@dataclass(frozen=True, slots=True)
class RollupTask:
    """Merge the rows of ``sources`` (one UTC day) finer than ``target_s`` into that tier."""

    day_ms: int
    target_s: int
    sources: tuple[MetricSegment, ...]


def target_resolution(day_ms: int, now_ms: int, tiers: Tiers) -> int | None:
    """The coarsest tier the whole day has passed into by ``now_ms``, or None."""
    age_ms = now_ms - (day_ms + DAY_MS)  # the age of the day's newest instant
    if age_ms >= tiers.five_minutes_ms:
        return 3_600
    if age_ms >= tiers.minute_ms:
        return 300
    if age_ms >= tiers.sub_minute_ms:
        return 60
    return None


def plan_rollups(segments: Iterable[MetricSegment], now_ms: int, tiers: Tiers) -> list[RollupTask]:
    """The roll-ups due at ``now_ms``, one per day, oldest day first."""
    days: dict[int, list[MetricSegment]] = {}
    for segment in segments:
        days.setdefault(segment.day_ms, []).append(segment)
    tasks = []
    for day_ms in sorted(days):
        target = target_resolution(day_ms, now_ms, tiers)
        if target is None:
            continue
        sources = tuple(s for s in days[day_ms] if s.resolution_s < target)
        if sources:
            tasks.append(RollupTask(day_ms, target, sources))
    return tasks


def rollup_sql(target_s: int, relation: str = SOURCE) -> str:
    """Rows of ``relation`` finer than ``target_s`` merged into its buckets, the rest as is."""
    if target_s not in ROLLUP_RESOLUTIONS_S:
        raise ValueError(f"not a roll-up tier: {target_s}")
    group = ", ".join(_GROUP)
    target_ms = target_s * 1_000
    return f"""WITH src AS (
    SELECT *, coalesce(rollup_s, storage_resolution) AS res FROM {relation}
),
moving AS (
    SELECT * EXCLUDE (ts_ms, res), ts_ms - ts_ms % {target_ms} AS ts_ms
    FROM src WHERE res < {target_s}
),
points AS (
    {sketch_points_sql("moving", _GROUP)}
),
histogram AS (
    SELECT {group}, key, sum(w) AS w FROM points GROUP BY {group}, key
),
sketches AS (
    SELECT {group}, list(key ORDER BY key) AS sketch_keys, list(w ORDER BY key) AS sketch_counts
    FROM histogram GROUP BY {group}
),
merged AS (
    SELECT {group}, any_value(dimensions) AS dimensions,
           sum(sample_count) AS sample_count, fsum("sum") AS "sum",
           min(minimum) AS minimum, max(maximum) AS maximum,
           bool_or({opaque_sql()}) AS opaque
    FROM moving GROUP BY {group}
)
SELECT m.namespace, m.metric_name, m.dims, m.dimensions, m.ts_ms, m.unit,
       {STANDARD_RESOLUTION}::INTEGER AS storage_resolution,
       m.sample_count, m."sum", m.minimum, m.maximum,
       []::DOUBLE[] AS "values", []::DOUBLE[] AS counts, {target_s}::INTEGER AS rollup_s,
       CASE WHEN NOT m.opaque THEN coalesce(s.sketch_keys, []::INTEGER[]) END AS sketch_keys,
       CASE WHEN NOT m.opaque THEN coalesce(s.sketch_counts, []::DOUBLE[]) END AS sketch_counts
FROM merged AS m LEFT JOIN sketches AS s USING ({group})
UNION ALL BY NAME
SELECT * EXCLUDE (res) FROM src WHERE res >= {target_s}"""


def rolled_rows(
    task: RollupTask, data_dir: Path, connect: Callable[[], duckdb.DuckDBPyConnection]
) -> pa.Table:
    """The rows that replace ``task.sources``: rolled-up buckets plus the rows left as they were.

    The files are read with pyarrow and conformed first, because segments written before the
    roll-up columns existed lack them; every value is then bucketed and merged by DuckDB.
    """
    tables = [
        conform_rows(pq.read_table(data_dir / s.path, partitioning=None)) for s in task.sources
    ]
    cursor = connect()
    try:
        cursor.register(SOURCE, pa.concat_tables(tables))
        return conform_rows(cursor.sql(rollup_sql(task.target_s)).to_arrow_table())
    finally:
        cursor.close()
