"""Step 4 of ``verify`` (spec audit §4.2.8): the rows of one signed segment.

Rows are read in physical order, because that order is part of what is checked. Each row's
hashes are recomputed from the stored bytes (never re-serialized), then seq values, linkage
and the signed anchors inside the segment (first prev hash, last entry hash, checkpoints)
locate what was modified, removed, inserted, reordered or rewritten.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from audit.chain import entry_hash
from audit.segments import SEGMENT_SCHEMA, project, username_of
from audit.verify_report import Finding

_CHAIN_COLUMNS = ("seq", "record_json", "record_sha256", "prev_hash", "entry_hash")
_PROJECTIONS = tuple(n for n in SEGMENT_SCHEMA.names if n not in _CHAIN_COLUMNS)


class UnreadableSegment(Exception):
    """Raised when a segment file cannot be decoded into rows."""


@dataclass(slots=True)
class Row:
    position: int  # file row number
    seq: int
    record_json: bytes
    record_sha256: bytes
    prev_hash: bytes
    entry_hash: bytes
    stored: dict[str, Any]  # the projection columns as stored
    record_ok: bool = False  # SHA-256(record_json) == record_sha256
    hash_ok: bool = False  # E(seq, prev_hash, record_sha256) == entry_hash

    @property
    def intact(self) -> bool:
        return self.record_ok and self.hash_ok

    def event_id(self) -> str | None:
        record = self.record()
        if record is not None and isinstance(record.get("eventID"), str):
            return str(record["eventID"])
        value = self.stored.get("event_id")
        return value if isinstance(value, str) else None

    def record(self) -> dict[str, Any] | None:
        try:
            value = orjson.loads(self.record_json)
        except orjson.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None


def read_rows(path: Path, trail_id: uuid.UUID) -> list[Row]:
    """Every row of a segment in physical order, with its hashes checked."""
    try:
        table = pq.ParquetFile(path).read()
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise UnreadableSegment(str(exc) or type(exc).__name__) from None
    missing = [name for name in (*_CHAIN_COLUMNS, *_PROJECTIONS) if name not in table.column_names]
    if missing:
        raise UnreadableSegment(f"missing columns {', '.join(missing)}")
    try:
        # The record as stored bytes: a byte that is no longer UTF-8 is a modified record.
        columns = {"record_json": table.column("record_json").cast(pa.binary()).to_pylist()}
        for name in (*_CHAIN_COLUMNS, *_PROJECTIONS):
            columns.setdefault(name, table.column(name).to_pylist())
    except (pa.ArrowException, UnicodeDecodeError) as exc:
        raise UnreadableSegment(f"undecodable values: {exc}") from None
    rows = []
    for position in range(table.num_rows):
        seq = columns["seq"][position]
        record = columns["record_json"][position]
        digests = [columns[n][position] for n in ("record_sha256", "prev_hash", "entry_hash")]
        if not isinstance(seq, int) or record is None or any(d is None for d in digests):
            raise UnreadableSegment(f"row {position} has null chain columns")
        row = Row(
            position,
            seq,
            record,
            record_sha256=digests[0],
            prev_hash=digests[1],
            entry_hash=digests[2],
            stored={name: columns[name][position] for name in _PROJECTIONS},
        )
        row.record_ok = hashlib.sha256(row.record_json).digest() == row.record_sha256
        row.hash_ok = entry_hash(trail_id, seq, row.prev_hash, row.record_sha256) == row.entry_hash
        rows.append(row)
    return rows


@dataclass(slots=True)
class SegmentAnalysis:
    findings: list[Finding] = field(default_factory=list)
    by_seq: dict[int, Row] = field(default_factory=dict)  # the genuine row of each seq
    missing: set[int] = field(default_factory=set)
    modified: set[int] = field(default_factory=set)
    verified: int = 0
    head_mismatch: bool = False


def analyse_segment(
    rows: list[Row], segment: dict[str, Any], *, relpath: str, digest_seq: int
) -> SegmentAnalysis:
    """Findings for the rows of ``segment`` (its signed entry in a digest)."""
    return _Analyser(rows, segment, relpath, digest_seq).run()


class _Analyser:
    def __init__(
        self, rows: list[Row], segment: dict[str, Any], relpath: str, digest_seq: int
    ) -> None:
        self.rows = rows
        self.first, self.last = int(segment["firstSeq"]), int(segment["lastSeq"])
        self.p0 = _unhex(segment["firstPrevHash"])
        self.hb = _unhex(segment["lastEntryHash"])
        self.checkpoints = [(int(s), _unhex(h)) for s, h in segment.get("checkpoints") or []]
        self.relpath, self.digest_seq = relpath, digest_seq
        self.out = SegmentAnalysis()
        self.suspect: set[int] = set()  # seqs whose rows are not fully verified

    def run(self) -> SegmentAnalysis:
        genuine = self._pick_genuine()
        self.out.by_seq = genuine
        for seq in sorted(genuine):
            self._check_row(genuine[seq])
        self._check_seqs(genuine)
        self._check_order(genuine)
        self._check_linkage(genuine)
        self._check_anchors(genuine)
        self.out.verified = sum(1 for seq in genuine if seq not in self.suspect)
        return self.out

    # ---- 4.2: which row is genuine for each seq ---------------------------------------------

    def _pick_genuine(self) -> dict[int, Row]:
        groups: dict[int, list[Row]] = defaultdict(list)
        for row in self.rows:
            if self.first <= row.seq <= self.last:
                groups[row.seq].append(row)
            else:
                self._add(
                    "EVENT_INSERTED",
                    row,
                    f"seq {row.seq} is outside the signed range {self.first}..{self.last}",
                )
        successors = {row.prev_hash for row in self.rows}
        entries: dict[int, set[bytes]] = defaultdict(set)
        for row in self.rows:
            entries[row.seq].add(row.entry_hash)
        genuine: dict[int, Row] = {}
        for seq, group in groups.items():
            if len(group) == 1:
                genuine[seq] = group[0]
                continue
            scored = sorted(group, key=lambda r: -self._score(r, successors, entries))
            genuine[seq] = scored[0]
            self.suspect.add(seq)
            self.out.findings.append(
                Finding(
                    "EVENT_DUPLICATE",
                    "EVENT",
                    f"{len(group)} rows claim seq {seq}",
                    path=self.relpath,
                    digest_seq=self.digest_seq,
                    seq_start=seq,
                    seq_end=seq,
                    event_id=scored[0].event_id(),
                )
            )
            best = self._score(scored[0], successors, entries)
            for row in scored[1:]:
                if self._score(row, successors, entries) < best:
                    self._add(
                        "EVENT_INSERTED",
                        row,
                        "a second row for this seq does not link into the chain",
                    )
        return genuine

    def _score(self, row: Row, successors: set[bytes], entries: dict[int, set[bytes]]) -> int:
        score = 2 if row.intact else 0
        expected_prev = {self.p0} if row.seq == self.first else entries.get(row.seq - 1, set())
        score += row.prev_hash in expected_prev
        signed = {h for s, h in self.checkpoints if s == row.seq}
        if row.seq == self.last:
            signed.add(self.hb)
        score += 2 * (row.entry_hash in signed) + (row.entry_hash in successors)
        return score

    # ---- 4.1: each row ----------------------------------------------------------------------

    def _check_row(self, row: Row) -> None:
        if not row.record_ok:
            self._modified(row, "record bytes do not match record_sha256")
            return
        if not row.hash_ok:
            self._modified(row, "entry_hash is not E(seq, prev_hash, record_sha256)")
        record = row.record()
        if record is None:
            return
        try:
            expected = project(record, username_of(record.get("userIdentity") or {}))
        except (KeyError, TypeError, ValueError, AttributeError):
            return  # a record we could not have written is already EVENT_MODIFIED or foreign
        differ = [n for n in _PROJECTIONS if expected.get(n) != row.stored.get(n)]
        if differ:
            self.suspect.add(row.seq)
            self._add(
                "PROJECTION_MISMATCH",
                row,
                f"column(s) {', '.join(differ)} disagree with record_json",
                expected=str(expected[differ[0]]),
                actual=str(row.stored.get(differ[0])),
            )

    def _modified(self, row: Row, why: str) -> None:
        self.out.modified.add(row.seq)
        self.suspect.add(row.seq)
        self._add("EVENT_MODIFIED", row, why)

    # ---- 4.2: seq values --------------------------------------------------------------------

    def _check_seqs(self, genuine: dict[int, Row]) -> None:
        missing = [s for s in range(self.first, self.last + 1) if s not in genuine]
        self.out.missing = set(missing)
        for low, high in _runs(missing):
            count = high - low + 1
            self.out.findings.append(
                Finding(
                    "EVENT_MISSING",
                    "RANGE",
                    f"{count} record{'s' if count != 1 else ''}",
                    path=self.relpath,
                    digest_seq=self.digest_seq,
                    seq_start=low,
                    seq_end=high,
                )
            )
        present = max(genuine, default=self.first - 1)
        if present < self.last:
            self.out.findings.append(
                Finding(
                    "TAIL_TRUNCATED",
                    "SEGMENT",
                    f"expected last seq {self.last}, found {present if genuine else 'none'}",
                    path=self.relpath,
                    digest_seq=self.digest_seq,
                    seq_start=present + 1,
                    seq_end=self.last,
                    expected=str(self.last),
                    actual=str(present) if genuine else None,
                )
            )

    def _check_order(self, genuine: dict[int, Row]) -> None:
        physical = sorted(genuine.values(), key=lambda r: r.position)
        ordered = sorted(r.seq for r in physical)
        misplaced = [
            (row, index)
            for index, (row, seq) in enumerate(zip(physical, ordered, strict=True))
            if row.seq != seq
        ]
        if not misplaced:
            return
        self.suspect.update(row.seq for row, _ in misplaced)
        where = ", ".join(f"seq {row.seq} at row {row.position}" for row, _ in misplaced[:10])
        seqs = [row.seq for row, _ in misplaced]
        self.out.findings.append(
            Finding(
                "EVENT_REORDERED",
                "RANGE",
                f"{len(misplaced)} rows out of place: {where}",
                path=self.relpath,
                digest_seq=self.digest_seq,
                seq_start=min(seqs),
                seq_end=max(seqs),
            )
        )

    # ---- 4.3: linkage -----------------------------------------------------------------------

    def _check_linkage(self, genuine: dict[int, Row]) -> None:
        for seq in sorted(genuine):
            row = genuine[seq]
            if seq == self.first:
                expected = self.p0
            elif seq - 1 in genuine:
                expected = genuine[seq - 1].entry_hash
            else:
                continue  # EVENT_MISSING at seq - 1 explains it
            if row.prev_hash == expected:
                continue
            if seq in self.out.modified or seq - 1 in self.out.modified:
                continue  # EVENT_MODIFIED on this row or its predecessor explains it
            self.suspect.add(seq)
            self._add(
                "CHAIN_BREAK",
                row,
                f"prev_hash does not match the entry_hash of seq {seq - 1}",
                expected=expected.hex(),
                actual=row.prev_hash.hex(),
            )

    # ---- 4.4: signed anchors inside the segment ---------------------------------------------

    def _check_anchors(self, genuine: dict[int, Row]) -> None:
        last = genuine.get(self.last)
        if last is not None and last.entry_hash != self.hb:
            self.out.head_mismatch = True
            self.suspect.add(self.last)
            self.out.findings.append(
                Finding(
                    "CHAIN_HEAD_MISMATCH",
                    "SEGMENT",
                    f"entry_hash of seq {self.last} is not the signed lastEntryHash",
                    path=self.relpath,
                    digest_seq=self.digest_seq,
                    seq_start=self.last,
                    seq_end=self.last,
                    expected=self.hb.hex(),
                    actual=last.entry_hash.hex(),
                )
            )
        previous_ok, previous_seq = True, self.first - 1
        rewritten_after = self.last
        for seq, signed in self.checkpoints:
            row = genuine.get(seq)
            if row is None:
                previous_ok, previous_seq = False, seq
                continue
            ok = row.entry_hash == signed
            if not ok and previous_ok:
                self.out.findings.append(
                    Finding(
                        "CHAIN_REWRITTEN",
                        "RANGE",
                        f"checkpoint {seq} does not match the signed hash: the chain was "
                        f"rewritten after seq {previous_seq}",
                        path=self.relpath,
                        digest_seq=self.digest_seq,
                        seq_start=previous_seq + 1,
                        seq_end=seq,
                        expected=signed.hex(),
                        actual=row.entry_hash.hex(),
                    )
                )
                rewritten_after = min(rewritten_after, previous_seq)
            previous_ok, previous_seq = ok, seq
        if self.out.head_mismatch:
            rewritten_after = min(rewritten_after, previous_seq if previous_ok else self.last)
        # Rows after a failed anchor hash were rewritten as a whole: none of them is verified.
        self.suspect.update(range(rewritten_after + 1, self.last + 1))

    def _add(self, code: str, row: Row, message: str, **extra: Any) -> None:
        self.out.findings.append(
            Finding(
                code,
                "EVENT",
                message,
                path=self.relpath,
                digest_seq=self.digest_seq,
                seq_start=row.seq,
                seq_end=row.seq,
                event_id=row.event_id(),
                **extra,
            )
        )


def _runs(values: list[int]) -> list[tuple[int, int]]:
    """``[1, 2, 3, 7]`` → ``[(1, 3), (7, 7)]``."""
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and runs[-1][1] == value - 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _unhex(value: Any) -> bytes:
    try:
        return bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        return b""


__all__ = ["Row", "SegmentAnalysis", "UnreadableSegment", "analyse_segment", "read_rows"]
