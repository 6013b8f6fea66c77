"""Sealed audit segments (spec audit §4.2.3): Parquet files of chained entries, rows in ``seq``
order, with projections of the record for fast filtering.

``Entry`` is one appended record with its chain hashes; ``entries_table`` turns entries into
the segment's Arrow table (also used for the unsealed tail that lookups read from memory);
``write_segment`` writes a table durably (temp file, fsync, rename, directory fsync).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from audit.record import resource_type_and_name
from store.wal import fsync_path

SEGMENT_FORMAT = "wk-audit-segment-1"
FILE_MODE = 0o640
DIR_MODE = 0o750

SEGMENT_SCHEMA = pa.schema(
    [
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("record_json", pa.string(), nullable=False),
        pa.field("record_sha256", pa.binary(32), nullable=False),
        pa.field("prev_hash", pa.binary(32), nullable=False),
        pa.field("entry_hash", pa.binary(32), nullable=False),
        pa.field("event_id", pa.string()),
        pa.field("event_time", pa.timestamp("us", tz="UTC")),
        pa.field("event_source", pa.string()),
        pa.field("event_name", pa.string()),
        pa.field("read_only", pa.bool_()),
        pa.field("event_category", pa.string()),
        pa.field("event_type", pa.string()),
        pa.field("user_type", pa.string()),
        pa.field("user_name", pa.string()),
        pa.field("principal_arn", pa.string()),
        pa.field("access_key_id", pa.string()),
        pa.field("source_ip", pa.string()),
        pa.field("error_code", pa.string()),
        pa.field("request_id", pa.string()),
        pa.field("resource_names", pa.list_(pa.string())),
        pa.field("resource_types", pa.list_(pa.string())),
    ]
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One record in the chain: its bytes and hashes, plus the projections lookups filter on."""

    seq: int
    record_json: bytes
    record_sha256: bytes
    prev_hash: bytes
    entry_hash: bytes
    projection: dict[str, Any]

    def wal_line(self) -> bytes:
        return orjson.dumps(
            {
                "seq": self.seq,
                "prev": self.prev_hash.hex(),
                "hash": self.entry_hash.hex(),
                "record": self.record_json.decode("utf-8"),
            }
        )


def project(record: dict[str, Any], username: str | None) -> dict[str, Any]:
    """The projection columns of a record (they must agree with it; ``verify`` checks)."""
    identity = record.get("userIdentity") or {}
    names: list[str] = []
    types: list[str] = []
    for resource in record.get("resources") or []:
        kind, name = resource_type_and_name(resource["ARN"])
        names += [name, resource["ARN"]]
        if kind is not None:
            types.append(kind)
    return {
        "event_id": record["eventID"],
        "event_time": datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=UTC
        ),
        "event_source": record["eventSource"],
        "event_name": record["eventName"],
        "read_only": bool(record.get("readOnly")),
        "event_category": record.get("eventCategory"),
        "event_type": record.get("eventType"),
        "user_type": identity.get("type"),
        "user_name": username,
        "principal_arn": identity.get("arn"),
        "access_key_id": identity.get("accessKeyId"),
        "source_ip": record.get("sourceIPAddress"),
        "error_code": record.get("errorCode"),
        "request_id": record.get("requestID"),
        "resource_names": names,
        "resource_types": types,
    }


def username_of(identity: dict[str, Any]) -> str | None:
    """LookupEvents' ``Username`` derived from a ``userIdentity`` (spec §2.4.1)."""
    kind = identity.get("type")
    if kind == "IAMUser":
        return identity.get("userName")
    if kind == "Root":
        return "root"
    if kind == "AWSService":
        return identity.get("invokedBy")
    return None


def entries_table(entries: list[Entry]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in SEGMENT_SCHEMA.names}
    for entry in entries:
        columns["seq"].append(entry.seq)
        columns["record_json"].append(entry.record_json.decode("utf-8"))
        columns["record_sha256"].append(entry.record_sha256)
        columns["prev_hash"].append(entry.prev_hash)
        columns["entry_hash"].append(entry.entry_hash)
        for name, value in entry.projection.items():
            columns[name].append(value)
    return pa.table(columns, schema=SEGMENT_SCHEMA)


def segment_path(root: Path, trail: str, first: int, last: int, sealed_at: datetime) -> Path:
    stamp = sealed_at.astimezone(UTC)
    return (
        root
        / "segments"
        / stamp.strftime("%Y/%m/%d")
        / f"{trail}_{first:012d}-{last:012d}_{stamp.strftime('%Y%m%dT%H%M%SZ')}.parquet"
    )


def write_segment(path: Path, table: pa.Table, metadata: dict[str, str], *, fsync: bool) -> None:
    """Write ``table`` to ``path`` so that a reader sees either nothing or the whole file."""
    make_dirs(path.parent)
    table = table.replace_schema_metadata({"watchkeep.format": SEGMENT_FORMAT, **metadata})
    temp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temp, compression="zstd", compression_level=1)
    os.chmod(temp, FILE_MODE)
    if fsync:
        fsync_path(temp)
    os.replace(temp, path)
    if fsync:
        fsync_path(path.parent)


def segment_bounds(path: Path) -> tuple[int, int]:
    """``(first_seq, last_seq)`` from a segment's file name."""
    seqs = path.stem.rsplit("_", 2)[-2]
    first, last = seqs.split("-")
    return int(first), int(last)


def segment_sealed_at(path: Path) -> datetime:
    stamp = path.stem.rsplit("_", 1)[-1]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def list_segments(root: Path) -> list[Path]:
    """Every sealed segment under ``root``, in chain order."""
    found = [p for p in (root / "segments").rglob("*.parquet") if not p.name.startswith(".")]
    return sorted(found, key=segment_bounds)


def make_dirs(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
