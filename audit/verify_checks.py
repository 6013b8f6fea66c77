"""Steps 8-11 of ``verify`` (spec audit §4.2.8): freshness and restarts, anchors, the live
head, and the clock. Pure functions from what the earlier steps found to findings; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from audit.verify_digests import ValidDigest
from audit.verify_format import format_time, parse_time
from audit.verify_report import Finding, format_duration

CLOCK_TOLERANCE_S = 2.0


@dataclass(frozen=True, slots=True)
class LiveHead:
    """What a running server reports in ``GetTrailStatus`` (step 10)."""

    chain_head_seq: int
    latest_digest_seq: int | None
    source: str = "server"


def restart_findings(valid: list[ValidDigest]) -> list[Finding]:
    """``DOWNTIME`` after a clean shutdown, ``UNCLEAN_SHUTDOWN`` after anything else."""
    findings = []
    for previous, digest in zip(valid, valid[1:], strict=False):
        if digest.payload["reason"] != "startup":
            continue
        if previous.payload["reason"] == "shutdown":
            down = parse_time(digest.end_time) - parse_time(previous.end_time)
            code = "DOWNTIME"
            message = (
                f"stopped {previous.end_time}, started {digest.end_time} "
                f"({format_duration(down.total_seconds())})"
            )
        else:
            code = "UNCLEAN_SHUTDOWN"
            message = (
                f"started after #{previous.seq:08d} ({previous.payload['reason']}) without a "
                "shutdown digest"
            )
        findings.append(
            Finding(code, "DIGEST", message, path=digest.relpath, digest_seq=digest.seq)
        )
    return findings


def stale_finding(
    valid: list[ValidDigest],
    ref: datetime,
    *,
    interval_s: float,
    grace_s: float,
    expect_running: bool,
) -> Finding | None:
    """``STALE_DIGEST_CHAIN`` when the newest digest before ``ref`` is too old (heartbeat)."""
    if any(parse_time(d.end_time) > ref for d in valid):
        return None  # the chain goes on past the reference time
    if not valid:
        return None
    last = valid[-1]
    age = (ref - parse_time(last.end_time)).total_seconds()
    allowed = interval_s + grace_s
    if age <= allowed:
        return None
    if last.payload["reason"] == "shutdown" and not expect_running:
        return None
    return Finding(
        "STALE_DIGEST_CHAIN",
        "DIGEST",
        f"last digest is {format_duration(age)} old, interval {format_duration(interval_s)}",
        path=last.relpath,
        digest_seq=last.seq,
        expected=f"a digest after {format_time(ref.timestamp() - allowed)}",
        actual=last.end_time,
        subject=f"(after #{last.seq:08d} ending {last.end_time})",
    )


def anchor_findings(
    anchors: list[tuple[Path, list[dict[str, Any]]]],
    valid: list[ValidDigest],
    trail_id: str | None,
) -> list[Finding]:
    """Each anchor record must match the valid digest of its seq, and not be beyond them."""
    by_seq = {d.seq: d for d in valid}
    newest = max(by_seq, default=0)
    findings = []
    for path, records in anchors:
        ahead: dict[str, Any] | None = None
        for record in records:
            if trail_id is not None and record["trailId"] != trail_id:
                continue
            seq = int(record["digestSeq"])
            if seq > newest:
                if ahead is None or seq > int(ahead["digestSeq"]):
                    ahead = record
                continue
            disk = by_seq.get(seq)  # an invalid or missing digest is reported already
            if disk is not None and disk.sha256 != record["digestSha256"]:
                findings.append(
                    Finding(
                        "ANCHOR_MISMATCH",
                        "ANCHOR",
                        f"digest #{seq:08d} on disk is not the one the anchor recorded",
                        path=str(path),
                        digest_seq=seq,
                        expected=str(record["digestSha256"]),
                        actual=disk.sha256,
                    )
                )
        if ahead is not None:
            findings.append(
                Finding(
                    "ANCHOR_AHEAD",
                    "ANCHOR",
                    f"the anchor knows digest #{int(ahead['digestSeq']):08d} (chain head seq "
                    f"{ahead['chainHeadSeq']}) but the newest valid digest on disk is "
                    f"#{newest:08d}",
                    path=str(path),
                    digest_seq=int(ahead["digestSeq"]),
                    seq_start=int(ahead["chainHeadSeq"]),
                    expected=str(ahead["digestSha256"]),
                )
            )
    return findings


def live_findings(live: LiveHead, valid: list[ValidDigest], disk_seq: int) -> list[Finding]:
    """The server's head, asked after reading the disk, may be ahead by a digest, not behind."""
    newest = max((d.seq for d in valid), default=0)
    server_digest = live.latest_digest_seq or 0
    problems = []
    if live.chain_head_seq < disk_seq:
        problems.append(
            ("LIVE_HEAD_BEHIND", f"server head seq {live.chain_head_seq}, disk seq {disk_seq}")
        )
    if server_digest < newest:
        problems.append(("LIVE_HEAD_BEHIND", f"server digest #{server_digest}, disk #{newest}"))
    if server_digest > newest + 1:  # one may have been written while verify ran
        problems.append(("LIVE_HEAD_AHEAD", f"server digest #{server_digest}, disk #{newest}"))
    return [Finding(code, "SERVER", message, path=live.source) for code, message in problems]


def clock_findings(times: dict[int, tuple[datetime, str | None]]) -> list[Finding]:
    """``CLOCK_REGRESSION`` where ``eventTime`` goes back more than 2 s from one seq to the next."""
    findings = []
    for seq in sorted(times):
        if seq - 1 not in times:
            continue
        (at, event_id), (before, _id) = times[seq], times[seq - 1]
        back_s = (before - at).total_seconds()
        if back_s > CLOCK_TOLERANCE_S:
            findings.append(
                Finding(
                    "CLOCK_REGRESSION",
                    "EVENT",
                    f"eventTime {format_time(at)} is {format_duration(back_s)} before that of "
                    f"seq {seq - 1}",
                    seq_start=seq,
                    seq_end=seq,
                    event_id=event_id,
                )
            )
    return findings


__all__ = [
    "LiveHead",
    "anchor_findings",
    "clock_findings",
    "live_findings",
    "restart_findings",
    "stale_finding",
]
