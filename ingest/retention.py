"""Log retention runs: the partitions retention policies expire, what each held, and how a run
is described to its caller and to the audit trail (DESIGN: "whole expired partitions are dropped,
with a dry-run and an audit record").

The store decides and drops (``Store.apply_retention``); this module adds the segment and row
counts of each partition, read from the catalog just before the drop, and builds the records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from store import catalog
from store.engine import Store

__all__ = [
    "ExpiredPartition",
    "apply_log_retention",
    "group_summaries",
    "service_event_details",
]

# serviceEventDetails are capped at 100 KB (spec audit §2.4); a partition takes ~150 bytes.
PARTITIONS_PER_EVENT = 400


@dataclass(frozen=True, slots=True)
class ExpiredPartition:
    """One (log group, hour) partition that a retention run dropped or would drop; the counts
    are None when the partition appeared between the catalog read and the drop."""

    log_group: str
    hour_ms: int
    segments: int | None = None
    rows: int | None = None
    size_bytes: int | None = None


def apply_log_retention(store: Store, *, dry_run: bool = False) -> list[ExpiredPartition]:
    """Drop the partitions retention policies expire now (or only list them, with ``dry_run``)."""
    planned = store.apply_retention(dry_run=True)
    counts = _partition_counts(store, planned) if planned else {}
    # Not skipped when nothing expires: a run also prunes old idempotency keys.
    expired = planned if dry_run else store.apply_retention()
    return [ExpiredPartition(g, h, *counts.get((g, h), (None, None, None))) for g, h in expired]


def _partition_counts(
    store: Store, wanted: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], tuple[int, int, int]]:
    """(segments, rows, bytes) of each wanted partition, as the catalog holds them now."""
    keys = set(wanted)
    with store.cursor() as conn:
        names = {group.id: group.name for group in catalog.load_groups(conn)}
        segments = catalog.load_segments(conn)
    counts: dict[tuple[str, int], tuple[int, int, int]] = {}
    for segment in segments:
        key = (names.get(segment.group_id, ""), segment.hour_ms)
        if key in keys:
            n, rows, size = counts.get(key, (0, 0, 0))
            counts[key] = (n + 1, rows + segment.row_count, size + segment.size_bytes)
    return counts


def hour_text(hour_ms: int) -> str:
    return datetime.fromtimestamp(hour_ms / 1000, UTC).strftime("%Y-%m-%dT%H:00Z")


def group_summaries(expired: Sequence[ExpiredPartition]) -> list[dict[str, Any]]:
    """One entry per log group. Retention drops every partition of a group up to its horizon,
    so the group and the last hour dropped name exactly the partitions that went."""
    groups: dict[str, dict[str, Any]] = {}
    for p in expired:
        entry = groups.setdefault(
            p.log_group,
            {
                "logGroup": p.log_group,
                "partitions": 0,
                "firstHour": hour_text(p.hour_ms),
                "lastHour": hour_text(p.hour_ms),
                "segments": 0,
                "rows": 0,
                "bytes": 0,
            },
        )
        entry["partitions"] += 1
        entry["firstHour"] = min(entry["firstHour"], hour_text(p.hour_ms))
        entry["lastHour"] = max(entry["lastHour"], hour_text(p.hour_ms))
        for name, value in (("segments", p.segments), ("rows", p.rows), ("bytes", p.size_bytes)):
            entry[name] = None if value is None or entry[name] is None else entry[name] + value
    return list(groups.values())


def service_event_details(expired: Sequence[ExpiredPartition]) -> list[dict[str, Any]]:
    """The ``serviceEventDetails`` of the records of one scheduled run that dropped
    partitions: every partition named, split over as many records as the size cap needs."""
    chunks = [
        expired[i : i + PARTITIONS_PER_EVENT] for i in range(0, len(expired), PARTITIONS_PER_EVENT)
    ]
    return [
        {
            "trigger": "schedule",
            "part": number,
            "parts": len(chunks),
            "partitionCount": len(expired),
            "partitions": [
                {
                    "logGroup": p.log_group,
                    "hour": hour_text(p.hour_ms),
                    "hourMs": p.hour_ms,
                    "segments": p.segments,
                    "rows": p.rows,
                    "bytes": p.size_bytes,
                }
                for p in chunk
            ],
        }
        for number, chunk in enumerate(chunks, start=1)
    ]
