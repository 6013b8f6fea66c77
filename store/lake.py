"""The Parquet side of the store: turning batches into segments, compaction, retention.

``Lake`` keeps the catalog's segment list in memory (so a query snapshot needs no database
round trip) and changes it only together with the catalog, under the engine's view lock.
Files that leave the catalog are deleted after a grace period, since a query that took its
snapshot a moment earlier may still be reading them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from store.catalog import Segment
from store.doomed import DoomedFiles
from store.layout import HOUR_MS, partition_dir
from store.parquet import write_segment
from store.retention import Partition
from store.schema import unify

log = logging.getLogger(__name__)


class Lake:
    def __init__(self, data_dir: Path, segments: Iterable[Segment], *, fsync: bool = True) -> None:
        self.data_dir = data_dir
        self._fsync = fsync
        self._segments: dict[int, list[Segment]] = {}
        self._doomed = DoomedFiles()
        for segment in segments:
            self._segments.setdefault(segment.group_id, []).append(segment)

    def segments(self, group_id: int) -> list[Segment]:
        return list(self._segments.get(group_id, ()))

    def all_segments(self) -> list[Segment]:
        return [s for group in self._segments.values() for s in group]

    def select(self, group_id: int, start_ms: int, end_ms: int) -> list[Segment]:
        """Segments of a group that may hold events in ``[start_ms, end_ms)``."""
        return [
            s
            for s in self._segments.get(group_id, ())
            if s.max_ts >= start_ms and s.min_ts < end_ms
        ]

    def write(self, group_id: int, group_name: str, tables: list[pa.Table]) -> list[Segment]:
        """Write events as time-sorted segments, one per UTC hour they span (not yet published)."""
        table = _sorted_by_time(unify(tables))
        written: list[Segment] = []
        directory = self.data_dir
        try:
            for hour_ms, part in _split_by_hour(table):
                directory = partition_dir(self.data_dir, group_name, hour_ms)
                path = write_segment(part, directory, fsync=self._fsync)
                written.append(_describe(self.data_dir, path, group_id, hour_ms, part))
        except OSError as exc:
            self.delete_files(written)
            if exc.filename is None and exc.errno is not None:
                # Arrow's write errors name no file: say where it was writing.
                raise OSError(exc.errno, exc.strerror or str(exc), str(directory)) from exc
            raise
        except BaseException:
            self.delete_files(written)
            raise
        return written

    def publish(self, added: Iterable[Segment], removed: Iterable[Segment] = ()) -> None:
        """Make a catalog change visible to new snapshots. The caller holds the view lock."""
        gone = {s.path for s in removed}
        for segment in removed:
            group = self._segments.get(segment.group_id, [])
            self._segments[segment.group_id] = [s for s in group if s.path not in gone]
        self._doomed.add(self.data_dir / s.path for s in removed)
        for segment in added:
            self._segments.setdefault(segment.group_id, []).append(segment)

    def forget_group(self, group_id: int) -> None:
        self.publish((), self._segments.pop(group_id, []))

    def delete_files(self, segments: Iterable[Segment]) -> None:
        for segment in segments:
            (self.data_dir / segment.path).unlink(missing_ok=True)

    def purge_doomed(self, grace_s: float, *, now: Callable[[], float] = time.monotonic) -> int:
        """Delete files that left the catalog more than ``grace_s`` ago."""
        return self._doomed.purge(grace_s, now=now)

    def partitions(self) -> dict[Partition, list[Segment]]:
        """Every (group, hour) partition; groups are named by id here, as strings."""
        out: dict[Partition, list[Segment]] = {}
        for segment in self.all_segments():
            out.setdefault(Partition(str(segment.group_id), segment.hour_ms), []).append(segment)
        return out

    def compaction_candidates(
        self, min_segments: int, small_rows: int
    ) -> list[tuple[int, list[Segment]]]:
        """Partitions holding more than ``min_segments`` small segments, with those segments."""
        found = []
        for partition, segments in self.partitions().items():
            small = [s for s in segments if s.row_count < small_rows]
            if len(small) > min_segments:
                found.append((int(partition.group), small))
        return found


def _sorted_by_time(table: pa.Table) -> pa.Table:
    """The table in (ts_ms, seq) order; most flushes arrive in order, and checking is cheaper
    than sorting (the sort was a tenth of the server's CPU under load)."""
    # Both checks: rows in time order are not in (ts_ms, seq) order when equal times come
    # out of seq order, as they can when compaction merges segments written out of turn.
    in_seq_order = _ascending(table.column("seq"))
    if in_seq_order and _ascending(table.column("ts_ms")):
        return table
    # Arrow's sort is stable, so rows already in seq order (a flush: the memtable holds its
    # batches in commit order) need only the time as key, a seventh of a two-key sort. The
    # take reads the chunks in place; concatenating them first costs more than it saves.
    keys = [("ts_ms", "ascending")]
    if not in_seq_order:
        keys.append(("seq", "ascending"))
    return table.take(pc.sort_indices(table, sort_keys=keys))


def _ascending(column: pa.ChunkedArray) -> bool:
    n = len(column)
    return n < 2 or bool(pc.all(pc.less_equal(column.slice(0, n - 1), column.slice(1))).as_py())


def _split_by_hour(table: pa.Table) -> list[tuple[int, pa.Table]]:
    """Slices of a time-sorted table, one per UTC hour."""
    # Integer division truncates toward zero, which is the floor here: the decoder accepts no
    # timestamp before 1970.
    hours = pc.multiply(pc.divide(table.column("ts_ms"), HOUR_MS), HOUR_MS)
    parts = []
    offset = 0
    for entry in pc.value_counts(hours).to_pylist():
        parts.append((int(entry["values"]), table.slice(offset, entry["counts"])))
        offset += entry["counts"]
    return parts


def _describe(data_dir: Path, path: Path, group_id: int, hour_ms: int, part: pa.Table) -> Segment:
    ts = pc.min_max(part.column("ts_ms")).as_py()
    seq = pc.min_max(part.column("seq")).as_py()
    return Segment(
        path=str(path.relative_to(data_dir)),
        group_id=group_id,
        hour_ms=hour_ms,
        min_ts=ts["min"],
        max_ts=ts["max"],
        min_seq=seq["min"],
        max_seq=seq["max"],
        row_count=part.num_rows,
        size_bytes=path.stat().st_size,
        columns={f.name: str(f.type) for f in part.schema},
    )
