"""The write-ahead log's file format: framed, checksummed records in numbered files.

A record is ``MAGIC | u32 body length | u32 CRC-32 of body | body``, and a body is
``u32 header length | header JSON | payload``. The header names what the payload is (a log
batch for a group, with its first sequence number); the payload is opaque bytes here (an Arrow
IPC stream for log batches).

Only the tail of the newest file can be torn, because records are appended and fsync'd before
anybody is told they exist; reading stops at the first record that is short or fails its CRC and
reports the offset where the good part ends, so the caller can cut the rest off.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

MAGIC = b"WKW1"
_FRAME = struct.Struct("<4sII")
_HEADER_LEN = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class WalRecord:
    header: dict[str, Any]
    payload: memoryview
    offset: int


def encode_record(header: dict[str, Any], payload: bytes | memoryview) -> list[bytes | memoryview]:
    """The pieces of one framed record, ready for ``os.writev``."""
    header_bytes = orjson.dumps(header)
    head = _HEADER_LEN.pack(len(header_bytes)) + header_bytes
    crc = zlib.crc32(payload, zlib.crc32(head))
    frame = _FRAME.pack(MAGIC, len(head) + len(payload), crc)
    return [frame, head, payload]


def read_records(path: Path) -> tuple[list[WalRecord], int]:
    """All intact records of one file, and the byte offset where the intact part ends."""
    data = memoryview(path.read_bytes())
    records = list(_iter_records(data))
    end = records[-1].offset + _record_size(data, records[-1].offset) if records else 0
    return records, end


def _record_size(data: memoryview, offset: int) -> int:
    _, length, _ = _FRAME.unpack_from(data, offset)
    return int(_FRAME.size + length)


def _iter_records(data: memoryview) -> Iterator[WalRecord]:
    offset = 0
    while offset + _FRAME.size <= len(data):
        magic, length, crc = _FRAME.unpack_from(data, offset)
        body_start = offset + _FRAME.size
        body = data[body_start : body_start + length]
        if magic != MAGIC or len(body) < length or zlib.crc32(body) != crc:
            return
        (header_len,) = _HEADER_LEN.unpack_from(body, 0)
        header = orjson.loads(body[_HEADER_LEN.size : _HEADER_LEN.size + header_len])
        yield WalRecord(header, body[_HEADER_LEN.size + header_len :], offset)
        offset = body_start + length


class WalFile:
    """One open WAL file that records are appended to. Not thread-safe: one writer owns it."""

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self._fsync = fsync
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.size = os.fstat(self._fd).st_size
        # Where the records that are known durable end: everything after it may be cut off.
        self.synced_size = self.size
        if fsync:
            # A new file is only durable once its directory entry is.
            fsync_path(path.parent)

    def append(self, pieces: list[bytes | memoryview]) -> None:
        """Write pieces at the end; on failure cut the file back so no torn record stays."""
        try:
            written = 0
            total = sum(len(p) for p in pieces)
            while written < total:
                written += os.writev(self._fd, _remaining(pieces, written))
        except OSError:
            self._truncate(self.size)
            raise
        self.size += total

    def sync(self) -> None:
        if self._fsync:
            os.fdatasync(self._fd)
        self.synced_size = self.size

    def rollback(self) -> None:
        """Cut the file back to its size at the last successful ``sync`` and make the cut
        durable, so that no record written since (all unacknowledged) can be replayed.
        Raises ``OSError`` if the cut cannot be made."""
        os.ftruncate(self._fd, self.synced_size)
        if self._fsync:
            # fdatasync covers the new size: it is metadata needed to read the file back.
            os.fdatasync(self._fd)
        self.size = self.synced_size

    def close(self) -> None:
        os.close(self._fd)

    def _truncate(self, size: int) -> None:
        try:
            os.ftruncate(self._fd, size)
        except OSError:
            pass  # The reader stops at the torn record anyway; the next append repeats this.


def _remaining(pieces: list[bytes | memoryview], skip: int) -> list[bytes | memoryview]:
    out: list[bytes | memoryview] = []
    for piece in pieces:
        if skip >= len(piece):
            skip -= len(piece)
            continue
        out.append(memoryview(piece)[skip:] if skip else piece)
        skip = 0
    return out


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a new or renamed entry is durable once its dir is)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
