"""Step 5 of ``verify`` (spec audit §4.2.8): the joins between signed segments, and the head.

Signed ranges must follow each other and their signed end hashes must join. A segment whose
predecessor is missing or unreadable starts at a ``CHAIN_BREAK``, and the last valid digest's
``chainHeadHash`` must be what is stored at ``chainHeadSeq``. Breaks that an earlier finding
already explains (a failed digest's uncovered range, a missing row) are not repeated.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from audit.chain import genesis
from audit.verify_digests import DigestChain, ValidDigest
from audit.verify_report import Finding
from audit.verify_rows import SegmentAnalysis


@dataclass(slots=True)
class CheckedSegment:
    """One signed segment and what its check found."""

    segment: dict[str, Any]
    digest_seq: int
    status: str  # ok, missing, pruned, unreadable
    analysis: SegmentAnalysis = field(default_factory=SegmentAnalysis)

    @property
    def first(self) -> int:
        return int(self.segment["firstSeq"])

    @property
    def last(self) -> int:
        return int(self.segment["lastSeq"])

    @property
    def relpath(self) -> str:
        return str(self.segment["path"])


def join_findings(
    checked: list[CheckedSegment],
    head: ValidDigest | None,
    chain: DigestChain,
    trail_id: uuid.UUID,
    *,
    range_limited: bool,
) -> list[Finding]:
    """``CHAIN_BREAK`` findings between ``checked`` segments (in seq order) and at the head."""

    def explained(low: int, high: int) -> bool:
        return range_limited or any(a <= low and high <= b for a, b in chain.uncovered)

    findings: list[Finding] = []
    previous: CheckedSegment | None = None
    for current in checked:
        segment = current.segment
        message = None
        if previous is None:
            expected = _start_of_chain(current.first, chain, trail_id)
            if expected is not None and segment["firstPrevHash"] != expected:
                message = "the first segment does not start the signed chain"
        elif current.first != previous.last + 1:
            if not explained(previous.last + 1, current.first - 1):
                message = f"no signed segment holds seq {previous.last + 1}"
        elif segment["firstPrevHash"] != previous.segment["lastEntryHash"]:
            message = "firstPrevHash is not the previous segment's lastEntryHash"
        elif previous.status in ("missing", "unreadable"):
            message = f"the segment holding seq {current.first - 1} is {previous.status}"
        if message is not None:
            findings.append(_break(message, current.relpath, current.digest_seq, current.first))
        previous = current
    if head is None or head.head_seq == 0:
        return findings
    holder = next((c for c in checked if c.last == head.head_seq), None)
    message = None
    if holder is None:
        if not explained(head.head_seq, head.head_seq):
            message = "no signed segment ends at the chain head"
    elif holder.segment["lastEntryHash"] != head.head_hash:
        message = "the signed chain head is not the segment's last hash"
    elif holder.status in ("missing", "unreadable"):
        message = f"the segment holding the chain head is {holder.status}"
    elif holder.status == "ok" and not holder.analysis.head_mismatch:
        row = holder.analysis.by_seq.get(head.head_seq)  # a missing row is EVENT_MISSING
        if row is not None and row.entry_hash.hex() != head.head_hash:
            message = "stored entry_hash at chainHeadSeq differs"
    if message is not None:
        path = holder.relpath if holder else head.relpath
        finding = _break(message, path, head.seq, head.head_seq)
        finding.expected = head.head_hash
        findings.append(finding)
    return findings


def _start_of_chain(first: int, chain: DigestChain, trail_id: uuid.UUID) -> str | None:
    """The hash the oldest checked segment must continue from, if known."""
    if first == 1:
        return genesis(trail_id).hex()
    for digest in reversed(chain.valid):
        retention = digest.payload.get("retention")
        if isinstance(retention, dict) and retention.get("prunedThroughSeq") == first - 1:
            return str(retention.get("prunedThroughEntryHash"))
    return None


def _break(message: str, path: str, digest_seq: int, seq: int) -> Finding:
    return Finding(
        "CHAIN_BREAK",
        "EVENT",
        message,
        path=path,
        digest_seq=digest_seq,
        seq_start=seq,
        seq_end=seq,
    )


__all__ = ["CheckedSegment", "join_findings"]
