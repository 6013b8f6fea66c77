"""Log retention runs: the partitions retention policies expire, what each held, and how a run
is described to its caller and to the audit trail (DESIGN: "whole expired partitions are dropped,
with a dry-run and an audit record").

The store decides, drops and counts (``Store.apply_retention``); this module builds the records.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from store.engine import Store
from store.log_upkeep import ExpiredPartition

__all__ = [
    "ExpiredPartition",
    "apply_log_retention",
    "group_summaries",
    "service_event_details",
]

# serviceEventDetails are capped at 100 KB (spec audit §2.4); a partition takes ~150 bytes.
PARTITIONS_PER_EVENT = 400


def apply_log_retention(store: Store, *, dry_run: bool = False) -> list[ExpiredPartition]:
    """Drop the partitions retention policies expire now (or only list them, with ``dry_run``)."""
    # Not skipped when nothing expires: a run also prunes old idempotency keys.
    return store.apply_retention(dry_run=dry_run)


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
        entry["segments"] += p.segments
        entry["rows"] += p.rows
        entry["bytes"] += p.size_bytes
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
