"""Step 7 of ``verify`` (spec audit §4.2.8): the unsigned tail after the last valid digest.

Segments sealed since the last digest and the WAL files must continue the chain from the
signed head. What does is reported once as ``TAIL_UNSIGNED`` (info); a break inside is a
``CHAIN_BREAK``; a Parquet file that does not continue the chain is not a tail at all (the
caller reports it as ``SEGMENT_UNREFERENCED``). The WAL is read the way the trail replays it:
a file ends where the next one begins, and a torn last line is ignored (a writer may be
appending to it right now).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from audit.chain import entry_hash
from audit.segments import segment_bounds
from audit.verify_report import Finding
from audit.verify_rows import UnreadableSegment, read_rows


@dataclass(slots=True)
class TailEntry:
    seq: int
    record_json: bytes
    prev_hash: bytes
    entry_hash: bytes


@dataclass(slots=True)
class Tail:
    findings: list[Finding] = field(default_factory=list)
    segments: set[str] = field(default_factory=set)  # relpaths that are a valid tail
    entries: list[TailEntry] = field(default_factory=list)
    head_seq: int = 0


def check_tail(
    root: Path,
    candidates: list[Path],
    *,
    trail_id: uuid.UUID,
    head_seq: int,
    head_hash: bytes,
) -> Tail:
    """Walk unreferenced segments (``candidates``) after ``head_seq``, then the WAL files."""
    walker = _TailWalker(root, trail_id, head_seq, head_hash)
    for path in sorted(candidates, key=_bounds_or_max):
        walker.segment(path)
    walker.wal()
    return walker.finish()


class _TailWalker:
    def __init__(self, root: Path, trail_id: uuid.UUID, head_seq: int, head_hash: bytes) -> None:
        self.root, self.trail_id = root, trail_id
        self.seq, self.hash = head_seq, head_hash
        self.out = Tail(head_seq=head_seq)
        self.broken = False
        self.first_path: str | None = None

    def segment(self, path: Path) -> None:
        relpath = path.relative_to(self.root).as_posix()
        if self.broken:
            return
        try:
            rows = sorted(read_rows(path, self.trail_id), key=lambda r: r.position)
        except UnreadableSegment:
            return
        if not rows or rows[0].seq != self.seq + 1 or rows[0].prev_hash != self.hash:
            return  # not a continuation: SEGMENT_UNREFERENCED
        self.out.segments.add(relpath)
        for row in rows:
            entry = TailEntry(row.seq, row.record_json, row.prev_hash, row.entry_hash)
            if not self._take(entry, relpath):
                return

    def wal(self) -> None:
        files = []
        for path in (self.root / "wal").glob("wal-*.jsonl"):
            try:
                files.append((int(path.stem.split("-", 1)[1]), path))
            except ValueError:
                continue
        files.sort()
        for index, (_first, path) in enumerate(files):
            if self.broken:
                return
            limit = files[index + 1][0] if index + 1 < len(files) else None
            relpath = path.relative_to(self.root).as_posix()
            for entry in _wal_entries(path, limit):
                if entry.seq <= self.seq:
                    continue  # sealed already: a crash came between the seal's steps
                if not self._take(entry, relpath):
                    return

    def _take(self, entry: TailEntry, relpath: str) -> bool:
        digest = hashlib.sha256(entry.record_json).digest()
        expected = entry_hash(self.trail_id, entry.seq, self.hash, digest)
        if (
            entry.seq != self.seq + 1
            or entry.prev_hash != self.hash
            or entry.entry_hash != expected
        ):
            self.broken = True
            self.out.findings.append(
                Finding(
                    "CHAIN_BREAK",
                    "TAIL",
                    f"the unsigned tail breaks at seq {entry.seq} (after seq {self.seq})",
                    path=relpath,
                    seq_start=entry.seq,
                    seq_end=entry.seq,
                    expected=expected.hex(),
                    actual=entry.entry_hash.hex(),
                )
            )
            return False
        if self.first_path is None:
            self.first_path = relpath
        self.seq, self.hash = entry.seq, entry.entry_hash
        self.out.entries.append(entry)
        return True

    def finish(self) -> Tail:
        entries = self.out.entries
        self.out.head_seq = self.seq
        if entries:
            first, last = entries[0].seq, entries[-1].seq
            state = "chain broken after it" if self.broken else "chain intact"
            self.out.findings.insert(
                0,
                Finding(
                    "TAIL_UNSIGNED",
                    "TAIL",
                    f"{len(entries)} records seq={first}..{last}, {state}",
                    path=self.first_path,
                    seq_start=first,
                    seq_end=last,
                ),
            )
        return self.out


def _wal_entries(path: Path, limit: int | None) -> list[TailEntry]:
    try:
        data = path.read_bytes()
    except OSError:
        return []
    entries = []
    for line in data.split(b"\n")[:-1]:  # the part after the last newline may be torn
        try:
            item = orjson.loads(line)
            entry = TailEntry(
                int(item["seq"]),
                str(item["record"]).encode("utf-8"),
                bytes.fromhex(item["prev"]),
                bytes.fromhex(item["hash"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            break
        if limit is not None and entry.seq >= limit:
            break
        entries.append(entry)
    return entries


def _bounds_or_max(path: Path) -> tuple[int, int]:
    try:
        return segment_bounds(path)
    except (ValueError, IndexError):
        return (1 << 62, 1 << 62)


__all__ = ["Tail", "TailEntry", "check_tail"]
