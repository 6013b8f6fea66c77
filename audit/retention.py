"""Audit retention that keeps the chain verifiable (spec audit §4.2.7).

``plan_pruning`` (pure) picks the whole signed segments whose newest event is older than the
limit, oldest first, stopping at the first that is not; it never picks the newest segment on
disk, since the chain head is read from it at start-up. ``prune_audit_trail`` acts on a plan:
it records ``PruneAuditSegments``, writes the signed ``reason:"retention"`` digest that names
every pruned file and ``prunedThroughEntryHash``, and only then deletes the files, so that a
crash in between leaves a file too many, never a deletion ``verify`` cannot explain. Digests are
never pruned. ``verify`` then reports the boundary as ``SEGMENT_PRUNED`` (info).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from audit.digests import Digester
from audit.segments import list_segments
from audit.signing import fingerprint
from audit.trail import AuditTrail
from audit.verify_digests import check_digest_chain
from audit.verify_format import format_time, parse_time

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 400
MIN_RETENTION_DAYS = 365  # PCI DSS 10.5.1: at least 12 months


class RetentionTooShort(ValueError):
    """Raised when ``retention_days`` is under 365 and short retention was not allowed."""


@dataclass(slots=True)
class PruneResult:
    cutoff: str
    dry_run: bool
    segments: list[dict[str, Any]] = field(default_factory=list)  # the digest's entries
    digest_path: str | None = None

    @property
    def pruned_through_seq(self) -> int | None:
        return int(self.segments[-1]["lastSeq"]) if self.segments else None

    def to_json(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff,
            "dryRun": self.dry_run,
            "prunedThroughSeq": self.pruned_through_seq,
            "segments": [s["path"] for s in self.segments],
            "records": sum(int(s["eventCount"]) for s in self.segments),
            "digestPath": self.digest_path,
        }


def check_retention_days(days: int, *, allow_short: bool = False) -> int:
    if days < 1 or (days < MIN_RETENTION_DAYS and not allow_short):
        raise RetentionTooShort(
            f"audit retention of {days} days is under the {MIN_RETENTION_DAYS}-day floor "
            "(PCI DSS 10.5.1); raise it or set audit_allow_short_retention=true"
        )
    return days


def plan_pruning(
    signed: Sequence[dict[str, Any]], on_disk: Sequence[str], cutoff: datetime
) -> list[dict[str, Any]]:
    """The signed segment entries to prune, oldest first. No I/O here.

    ``signed`` are the segment entries of valid digests, ``on_disk`` the relative paths of the
    segment files in chain order. Segments already gone at the start of the chain are skipped;
    a gap further on stops the plan (that is ``verify``'s to report, not ours to widen).
    """
    present = set(on_disk)
    newest = on_disk[-1] if on_disk else None
    plan: list[dict[str, Any]] = []
    for entry in sorted(signed, key=lambda s: int(s["firstSeq"])):
        path = str(entry["path"])
        if path not in present:
            if plan:
                break
            continue
        newest_event = entry.get("newestEventTime")
        if path == newest or not newest_event or parse_time(newest_event) >= cutoff:
            break
        plan.append(entry)
    return plan


def prune_audit_trail(
    trail: AuditTrail,
    digester: Digester,
    *,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    allow_short: bool = False,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Delete the sealed segments older than ``retention_days``, signed; see the module doc."""
    check_retention_days(retention_days, allow_short=allow_short)
    at = now or datetime.now(UTC)
    cutoff = at - timedelta(days=retention_days)
    root = trail.config.root
    with digester.maintenance_lock:
        keys = {fingerprint(k): k for k in digester.public_keys}
        chain = check_digest_chain(root, keys)
        signed = [s for d in chain.valid for s in d.payload["segments"]]
        sealed = [p.relative_to(root).as_posix() for p in list_segments(root)]
        result = PruneResult(format_time(cutoff), dry_run, plan_pruning(signed, sealed, cutoff))
        if dry_run or not result.segments:
            return result
        last = result.segments[-1]
        pruned = [
            {k: s[k] for k in ("path", "sha256", "firstSeq", "lastSeq")} for s in result.segments
        ]
        trail.append_service_event(
            "PruneAuditSegments",
            {
                "retentionDays": retention_days,
                "cutoff": result.cutoff,
                "prunedThroughSeq": last["lastSeq"],
                "segmentCount": len(pruned),
                "recordCount": sum(int(s["eventCount"]) for s in result.segments),
            },
        )
        retention = {
            "prunedThroughSeq": last["lastSeq"],
            "prunedThroughEntryHash": last["lastEntryHash"],
            "prunedSegments": pruned,
        }
        digest = digester.write_digest("retention", retention=retention)
        result.digest_path = digest.relative_to(root).as_posix()
        paths = [root / s["path"] for s in result.segments]
        trail.forget_segments(paths)
        for path in paths:
            _remove(path)
    log.info(
        "audit retention: pruned %d segments through seq %s (events before %s)",
        len(paths),
        last["lastSeq"],
        result.cutoff,
    )
    return result


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "MIN_RETENTION_DAYS",
    "PruneResult",
    "RetentionTooShort",
    "check_retention_days",
    "plan_pruning",
    "prune_audit_trail",
]
