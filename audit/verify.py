"""``watchkeep audit verify`` (spec audit §4.2.8): is the audit trail on disk what was signed?

Reads files only, so it runs on a copy of the data directory, with the server stopped or
running (the active WAL is only read for the tail checks). Steps: trusted keys (1), the digest
chain (2, ``verify_digests``), each signed segment and its rows (3-4, ``verify_rows``), joins
between segments and the signed head (5), files no digest names (6), the unsigned tail
(7, ``verify_tail``), freshness (8), anchors (9), the live head (10, when given) and the
clock (11). Each problem becomes a ``Finding`` with a stable code.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.anchors import AnchorFile, read_anchor_file
from audit.chain import genesis
from audit.segments import segment_bounds
from audit.signing import fingerprint
from audit.verify_checks import (
    LiveHead,
    anchor_findings,
    clock_findings,
    live_findings,
    restart_findings,
    stale_finding,
)
from audit.verify_digests import DigestChain, ValidDigest, check_digest_chain
from audit.verify_format import format_time, parse_time, sha256_file
from audit.verify_joins import CheckedSegment, join_findings
from audit.verify_report import (
    ERROR,
    Finding,
    Valid,
    VerifyConfigError,
    VerifyReport,
    short_hash,
)
from audit.verify_rows import UnreadableSegment, analyse_segment, read_rows
from audit.verify_tail import Tail, check_tail


def verify(
    audit_root: Path,
    *,
    public_keys: Iterable[Ed25519PublicKey],
    start: datetime | None = None,
    end: datetime | None = None,
    grace_s: float | None = None,
    interval_s: float = 300.0,
    expect_running: bool = False,
    anchors: Sequence[Path] = (),
    now: datetime | None = None,
    follow_rotations: bool = True,
    live_head: Callable[[], LiveHead] | None = None,
    warn: Callable[[str], None] | None = None,
) -> VerifyReport:
    """Check the trail under ``audit_root`` (``<data_dir>/audit/<trail>``).

    ``warn`` receives what is worth saying but is no finding (an anchor file's malformed
    lines). Raises ``VerifyConfigError`` when the trail cannot be checked as asked.
    """
    if not (math.isfinite(interval_s) and interval_s > 0):
        raise VerifyConfigError(f"the digest interval must be above 0 seconds, not {interval_s}")
    if grace_s is not None and not (math.isfinite(grace_s) and grace_s >= 0):
        raise VerifyConfigError(f"the grace must be 0 seconds or more, not {grace_s}")
    return _Verifier(
        audit_root,
        keys={fingerprint(k): k for k in public_keys},
        start=start,
        ref=end or now or datetime.now(UTC),
        explicit_end=end is not None,
        grace_s=grace_s if grace_s is not None else max(60.0, 0.1 * interval_s),
        interval_s=interval_s,
        expect_running=expect_running,
        anchors=anchors,
        follow_rotations=follow_rotations,
        live_head=live_head,
        warn=warn or (lambda _message: None),
    ).run()


class _Verifier:
    def __init__(
        self,
        root: Path,
        *,
        keys: dict[str, Ed25519PublicKey],
        start: datetime | None,
        ref: datetime,
        explicit_end: bool,
        grace_s: float,
        interval_s: float,
        expect_running: bool,
        anchors: Sequence[Path],
        follow_rotations: bool,
        live_head: Callable[[], LiveHead] | None,
        warn: Callable[[str], None],
    ) -> None:
        if not root.is_dir():
            raise VerifyConfigError(f"{root} is not a readable audit trail directory")
        if not keys:  # step 1
            raise VerifyConfigError(
                "no trusted public key: pass --public-key FILE (or --trust-local-keys)"
            )
        self.root, self.keys = root, keys
        self.start, self.ref, self.explicit_end = start, ref, explicit_end
        self.grace_s, self.interval_s = grace_s, interval_s
        self.expect_running, self.follow_rotations = expect_running, follow_rotations
        self.live_head, self.warn = live_head, warn
        self.anchor_files: list[AnchorFile] = []
        self.anchors: list[tuple[Path, list[dict[str, Any]]]] = []
        for path in anchors:
            try:
                self.anchor_files.append(read_anchor_file(path))
            except OSError as exc:
                raise VerifyConfigError(f"cannot read anchor file {path}: {exc}") from None
        self.chain = DigestChain([], [])
        self.report = VerifyReport(root.name, None, {}, {})
        self.checked: list[CheckedSegment] = []
        self.tail = Tail()

    def run(self) -> VerifyReport:
        self.chain = check_digest_chain(
            self.root, self.keys, follow_rotations=self.follow_rotations
        )
        trail_id = self.chain.trail_id or _state_trail_id(self.root)
        valid = [d for d in self.chain.valid if self._in_range(d.start_time, d.end_time)]
        report = self.report
        report.trail_id = trail_id
        if self.chain.valid:
            report.trail_name = str(self.chain.valid[0].payload["trailName"])
        self._check_anchor_files(trail_id)
        first_start = self.chain.valid[0].start_time if self.chain.valid else None
        report.requested = {
            "start": format_time(self.start) if self.start else first_start,
            "end": format_time(self.ref),
        }
        report.found = {
            "start": valid[0].start_time if valid else None,
            "end": valid[-1].end_time if valid else None,
        }
        self._digests(valid)
        if trail_id is not None:
            tid = uuid.UUID(trail_id)
            self._segments(valid, tid)
            self._joins(valid, tid)
            self._unreferenced_and_tail(tid)
            self._clock()
        self._freshness(valid)
        self._anchors()
        self._live()
        return report

    # ---- step 2 ------------------------------------------------------------------------------

    def _digests(self, valid: list[ValidDigest]) -> None:
        in_range_seqs = {d.seq for d in valid}
        seqs = [
            f.seq
            for f in self.chain.files
            if f.payload is not None and self._file_in_range(f.payload)
        ]
        low, high = (min(seqs), max(seqs)) if seqs else (0, -1)
        entries: list[tuple[tuple[int, int], Finding | Valid]] = []
        for finding, file in self.chain.findings:
            if file is not None and file.payload is not None:
                if not self._file_in_range(file.payload):
                    continue
            elif (
                file is None
                and self.start is not None
                and not low <= (finding.digest_seq or 0) <= high
            ):
                continue
            entries.append(((finding.digest_seq or 0, 1), finding))
        for digest in valid:
            entries.append(((digest.seq, 0), Valid("DIGEST", digest.relpath)))
        entries.sort(key=lambda item: item[0])
        self.report.entries += [entry for _key, entry in entries]
        self.report.digests_total = len(entries)
        self.report.digests_valid = len(in_range_seqs)

    # ---- steps 3 and 4 -----------------------------------------------------------------------

    def _segments(self, valid: list[ValidDigest], trail_id: uuid.UUID) -> None:
        pruned = self._pruned_paths()
        signed = sorted(
            ((s, d.seq) for d in valid for s in d.payload["segments"]),
            key=lambda item: int(item[0]["firstSeq"]),
        )
        for segment, digest_seq in signed:
            relpath = str(segment["path"])
            path = self.root / relpath
            findings: list[Finding] = []
            checked = CheckedSegment(segment, digest_seq, "ok")
            if not path.is_file():
                checked.status = "pruned" if relpath in pruned else "missing"
                code = "SEGMENT_PRUNED" if relpath in pruned else "SEGMENT_MISSING"
                message = (
                    "removed by a signed retention digest" if relpath in pruned else "not found"
                )
                findings.append(self._seg_finding(code, checked, message))
            else:
                actual = sha256_file(path)
                if actual != segment["sha256"]:
                    findings.append(
                        self._seg_finding(
                            "SEGMENT_HASH_MISMATCH",
                            checked,
                            f"expected {short_hash(segment['sha256'])} got {short_hash(actual)}",
                            expected=str(segment["sha256"]),
                            actual=actual,
                        )
                    )
                try:
                    rows = read_rows(path, trail_id)
                except UnreadableSegment as exc:
                    checked.status = "unreadable"
                    findings.append(self._seg_finding("SEGMENT_UNREADABLE", checked, str(exc)))
                else:
                    checked.analysis = analyse_segment(
                        rows, segment, relpath=relpath, digest_seq=digest_seq
                    )
                    findings += checked.analysis.findings
            self.checked.append(checked)
            self.report.segments_total += 1
            self.report.records_total += int(segment["eventCount"])
            self.report.records_verified += checked.analysis.verified
            if any(f.severity == ERROR for f in findings):
                self.report.entries += findings
            else:
                self.report.segments_valid += 1
                self.report.entries += [Valid("SEGMENT", relpath), *findings]

    def _pruned_paths(self) -> set[str]:
        paths: set[str] = set()
        for digest in self.chain.valid:
            retention = digest.payload.get("retention")
            if isinstance(retention, dict):
                for item in retention.get("prunedSegments") or []:
                    if isinstance(item, dict) and isinstance(item.get("path"), str):
                        paths.add(item["path"])
        return paths

    # ---- step 5 (verify_joins) ---------------------------------------------------------------

    def _joins(self, valid: list[ValidDigest], trail_id: uuid.UUID) -> None:
        self.report.entries += join_findings(
            self.checked,
            valid[-1] if valid else None,
            self.chain,
            trail_id,
            range_limited=self.start is not None,
        )

    # ---- steps 6 and 7 -----------------------------------------------------------------------

    def _unreferenced_and_tail(self, trail_id: uuid.UUID) -> None:
        referenced = {str(s["path"]) for d in self.chain.valid for s in d.payload["segments"]}
        last = self.chain.valid[-1] if self.chain.valid else None
        head_seq = last.head_seq if last else 0
        head_hash = bytes.fromhex(last.head_hash) if last else genesis(trail_id)
        loose: list[tuple[Path, tuple[int, int] | None]] = []
        for path in sorted((self.root / "segments").rglob("*.parquet")):
            if path.name.startswith(".") or path.relative_to(self.root).as_posix() in referenced:
                continue
            try:
                bounds: tuple[int, int] | None = segment_bounds(path)
            except (ValueError, IndexError):
                bounds = None
            loose.append((path, bounds))
        candidates = [p for p, b in loose if b is not None and b[0] > head_seq]
        self.tail = check_tail(
            self.root, candidates, trail_id=trail_id, head_seq=head_seq, head_hash=head_hash
        )
        for path, bounds in loose:
            relpath = path.relative_to(self.root).as_posix()
            if relpath in self.tail.segments:
                continue
            if bounds is not None and any(
                a <= bounds[0] and bounds[1] <= b for a, b in self.chain.uncovered
            ):
                continue  # named by a failed digest: that finding reports the range
            self.report.entries.append(
                Finding(
                    "SEGMENT_UNREFERENCED",
                    "SEGMENT",
                    "no valid digest references this file and it does not continue the chain",
                    path=relpath,
                )
            )
        self.report.entries += self.tail.findings
        count = len(self.tail.entries)
        self.report.records_total += count
        if not any(f.code == "CHAIN_BREAK" for f in self.tail.findings):
            self.report.records_verified += count

    # ---- steps 8 to 11 (verify_checks) ------------------------------------------------------

    def _freshness(self, valid: list[ValidDigest]) -> None:
        self.report.entries += restart_findings(valid)
        before = [d for d in self.chain.valid if parse_time(d.end_time) <= self.ref]
        after = len(before) < len(self.chain.valid)
        stale = (
            None
            if after
            else stale_finding(
                before,
                self.ref,
                interval_s=self.interval_s,
                grace_s=self.grace_s,
                expect_running=self.expect_running,
            )
        )
        if stale is not None:
            self.report.entries.append(stale)

    def _check_anchor_files(self, trail_id: str | None) -> None:
        """An anchor file that anchors nothing of this trail cannot vouch for it: a wrong file,
        or a sink that never received a digest. That is no clean pass, so verify stops (exit 2)
        before doing the work."""
        for file in self.anchor_files:
            for number, why in file.malformed:
                self.warn(f"anchor file {file.path} line {number} is not an anchor record ({why})")
            records = [r for r in file.records if trail_id is None or r["trailId"] == trail_id]
            if not records:
                raise VerifyConfigError(
                    f"anchor file {file.path} contains no anchor records for trail "
                    f"{self.report.trail_name} (trail_id {trail_id})"
                )
            self.anchors.append((file.path, records))

    def _anchors(self) -> None:
        self.report.entries += anchor_findings(self.anchors, self.chain.valid, self.report.trail_id)

    def _live(self) -> None:
        if self.live_head is None:
            return
        live = self.live_head()  # asked after reading the disk, so it may only be ahead
        signed = self.chain.valid[-1].head_seq if self.chain.valid else 0
        disk_seq = max(self.tail.head_seq, signed)
        self.report.entries += live_findings(live, self.chain.valid, disk_seq)

    def _clock(self) -> None:
        times: dict[int, tuple[datetime, str | None]] = {}
        for checked in self.checked:
            for seq, row in checked.analysis.by_seq.items():
                stamp = _event_time(row.record())
                if stamp is not None:
                    times[seq] = (stamp, row.event_id())
        for entry in self.tail.entries:
            try:
                record = orjson.loads(entry.record_json)
            except orjson.JSONDecodeError:
                continue
            stamp = _event_time(record if isinstance(record, dict) else None)
            if stamp is not None:
                times[entry.seq] = (stamp, record.get("eventID"))
        self.report.entries += clock_findings(times)

    # ---- helpers -----------------------------------------------------------------------------

    def _in_range(self, start_time: str, end_time: str) -> bool:
        if self.start is not None and parse_time(end_time) < self.start:
            return False
        return not (self.explicit_end and parse_time(start_time) > self.ref)

    def _file_in_range(self, payload: dict[str, Any]) -> bool:
        return self._in_range(str(payload["digestStartTime"]), str(payload["digestEndTime"]))

    def _seg_finding(
        self, code: str, checked: CheckedSegment, message: str, **extra: Any
    ) -> Finding:
        return Finding(
            code,
            "SEGMENT",
            message,
            path=checked.relpath,
            digest_seq=checked.digest_seq,
            seq_start=checked.first,
            seq_end=checked.last,
            **extra,
        )


def _event_time(record: dict[str, Any] | None) -> datetime | None:
    if record is None or not isinstance(record.get("eventTime"), str):
        return None
    try:
        return parse_time(record["eventTime"])
    except ValueError:
        return None


def _state_trail_id(root: Path) -> str | None:
    try:
        return str(
            uuid.UUID(orjson.loads((root / "state" / "trail.json").read_bytes())["trail_id"])
        )
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


__all__ = ["LiveHead", "verify"]
