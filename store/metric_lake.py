"""The Parquet side of the metric table: day partitions, sorted segments, pruning, clean-up.

    <data>/tables/metrics/date=YYYY-MM-DD/<segment-id>.parquet

Segments are sorted by namespace, metric name, dimension set and time, so that Parquet's
row-group statistics let a read for one metric skip most of a day. ``MetricLake`` keeps the
catalog's segment list in memory (a query snapshot needs no database round trip) and changes it
only together with the catalog, under the metric store's view lock. Files that leave the catalog
are deleted after a grace period, since a query that took its snapshot a moment earlier may
still be reading them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from store.doomed import DoomedFiles
from store.metric_catalog import MetricSegment
from store.metric_model import mark_plain_samples
from store.parquet import write_segment

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
METRICS_TABLE_DIR = Path("tables") / "metrics"
SORT_KEYS = [
    ("namespace", "ascending"),
    ("metric_name", "ascending"),
    ("dims", "ascending"),
    ("ts_ms", "ascending"),
]


def day_floor_ms(ts_ms: int) -> int:
    return ts_ms - ts_ms % DAY_MS


def day_dir(data_dir: Path, day_ms: int) -> Path:
    """The Hive-style directory of one UTC day of the metric table."""
    return (
        data_dir / METRICS_TABLE_DIR / f"date={datetime.fromtimestamp(day_ms / 1000, UTC):%Y-%m-%d}"
    )


class MetricLake:
    def __init__(
        self, data_dir: Path, segments: Iterable[MetricSegment], *, fsync: bool = True
    ) -> None:
        self.data_dir = data_dir
        self._fsync = fsync
        self._segments: list[MetricSegment] = list(segments)
        self._doomed = DoomedFiles(remove_empty_parents=True)

    def all_segments(self) -> list[MetricSegment]:
        return list(self._segments)

    def select(self, start_ms: int, end_ms: int) -> list[MetricSegment]:
        """Segments that may hold datapoints in ``[start_ms, end_ms)``."""
        return [s for s in self._segments if s.max_ts >= start_ms and s.min_ts < end_ms]

    def write(self, tables: list[pa.Table], *, marked: bool = False) -> list[MetricSegment]:
        """Write rows as sorted segments, one per UTC day they span (not yet published).

        ``marked``: the rows already carry the store's ``plain_samples`` flag (memtable batches,
        flagged where they entered). Otherwise it is computed here: segments from before the
        flag lack it, and roll-up leaves it NULL on the rows it merges.
        """
        table = pa.concat_tables(tables)
        if not marked:
            table, _ = mark_plain_samples(table)
        written: list[MetricSegment] = []
        try:
            for day_ms, part in _split_by_day(table):
                part = part.sort_by(SORT_KEYS)
                path = write_segment(part, day_dir(self.data_dir, day_ms), fsync=self._fsync)
                written.append(_describe(self.data_dir, path, day_ms, part))
        except BaseException:
            self.delete_files(written)
            raise
        return written

    def publish(
        self, added: Iterable[MetricSegment], removed: Iterable[MetricSegment] = ()
    ) -> None:
        """Make a catalog change visible to new snapshots. The caller holds the view lock."""
        gone = {s.path for s in removed}
        if gone:
            self._segments = [s for s in self._segments if s.path not in gone]
            self._doomed.add(self.data_dir / path for path in sorted(gone))
        self._segments += list(added)

    def delete_files(self, segments: Iterable[MetricSegment]) -> None:
        for segment in segments:
            (self.data_dir / segment.path).unlink(missing_ok=True)

    def purge_doomed(self, grace_s: float, *, now: Callable[[], float] = time.monotonic) -> int:
        """Delete files that left the catalog more than ``grace_s`` ago; remove empty days."""
        return self._doomed.purge(grace_s, now=now)

    def days(self) -> dict[int, list[MetricSegment]]:
        out: dict[int, list[MetricSegment]] = {}
        for segment in self._segments:
            out.setdefault(segment.day_ms, []).append(segment)
        return out

    def compaction_candidates(
        self, min_segments: int, small_rows: int
    ) -> list[list[MetricSegment]]:
        """Per day holding more than ``min_segments`` small segments, those segments."""
        found = []
        for segments in self.days().values():
            small = [s for s in segments if s.row_count < small_rows]
            if len(small) > min_segments:
                found.append(small)
        return found


def remove_orphans(data_dir: Path, known: set[str]) -> int:
    """Delete temp files and segments the catalog does not list.

    A crash between writing a segment and committing it to the catalog leaves such a file; its
    rows are still in the WAL, so deleting it is what keeps replay from duplicating them.
    """
    root = data_dir / METRICS_TABLE_DIR
    if not root.exists():
        return 0
    removed = 0
    for path in root.rglob("*"):
        if path.is_file() and (
            path.name.endswith(".tmp") or str(path.relative_to(data_dir)) not in known
        ):
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.warning("removed %d unreferenced metric files under %s", removed, root)
    return removed


def _split_by_day(table: pa.Table) -> list[tuple[int, pa.Table]]:
    """The rows of each UTC day (timestamps are never before 1970, so // is the floor)."""
    days = pc.multiply(pc.divide(table.column("ts_ms"), DAY_MS), DAY_MS)
    parts = []
    for day in pc.unique(days).to_pylist():
        parts.append((int(day), table.filter(pc.equal(days, day))))
    return sorted(parts, key=lambda part: part[0])


def _describe(data_dir: Path, path: Path, day_ms: int, part: pa.Table) -> MetricSegment:
    ts = pc.min_max(part.column("ts_ms")).as_py()
    # A raw row's granularity is its storage resolution, a rolled-up row's its tier.
    resolution = part.column("storage_resolution")
    if "rollup_s" in part.column_names:
        resolution = pc.coalesce(part.column("rollup_s"), resolution)
    return MetricSegment(
        path=str(path.relative_to(data_dir)),
        day_ms=day_ms,
        min_ts=ts["min"],
        max_ts=ts["max"],
        row_count=part.num_rows,
        size_bytes=path.stat().st_size,
        resolution_s=int(pc.min(resolution).as_py()),
        plain=bool(pc.all(part.column("plain_samples")).as_py()),
    )
