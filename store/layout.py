"""Where things live in the data directory. Pure: builds paths, touches no file.

    <data>/catalog.duckdb                       metadata (groups, streams, segments...)
    <data>/wal/<generation:020d>.wal            write-ahead log files, replayed in order
    <data>/tables/logs/log_group=<enc>/date=YYYY-MM-DD/hour=HH/<segment-id>.parquet

The table files follow Hive's ``key=value`` convention so DuckDB, Spark or any Parquet reader
can read the lake directly. ``<enc>``, the group's directory value, has two forms:

- **readable**: the name percent-encoded (``quote(name, safe="-_.")``, UTF-8), because it may
  contain ``/``: ``/aws/lambda/x`` is ``log_group=%2Faws%2Flambda%2Fx``. Used whenever
  ``log_group=<readable>`` fits in NAME_MAX (255 bytes), i.e. the encoding is at most 245 bytes;
  every name that could ever be written before the hashed form existed has this form, so older
  data directories read unchanged.
- **hashed**, for longer names (a name may have 512 characters, and one ``/`` or ``日`` takes 3
  and 9 bytes encoded): ``<prefix>@<sha256>``, where ``<prefix>`` is the readable form cut to at
  most 180 bytes at a character boundary (for people listing the directory) and ``<sha256>`` the
  64 hex digits of SHA-256 over the full name's UTF-8. Always 245 bytes or fewer.

Two names never share a directory: percent-encoding is reversible, it always escapes ``@`` (so a
readable value never contains one and a hashed value always does), and two hashed values are
equal only if SHA-256 collides. The catalog records every segment's path, so nothing reads a
group name back from a directory; ``decode_group`` can, for readable values only. A Hive reader
sees a hashed value as the group, not the name.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote

HOUR_MS = 3_600_000

CATALOG_FILE = "catalog.duckdb"
WAL_DIR = "wal"
LOGS_TABLE_DIR = Path("tables") / "logs"

# The longest file name Linux file systems allow (ext4, XFS, btrfs, tmpfs), in bytes.
NAME_MAX = 255
GROUP_KEY = "log_group"
_GROUP_VALUE_MAX = NAME_MAX - len(f"{GROUP_KEY}=")  # 245
_SAFE = "-_."
# Never produced by quote(..., safe=_SAFE), so it tells the two forms apart.
_HASH_MARK = "@"
_HASH_HEX = 64  # sha256
_PREFIX_MAX = _GROUP_VALUE_MAX - len(_HASH_MARK) - _HASH_HEX  # 180


def hour_floor_ms(ts_ms: int) -> int:
    """Start of the UTC hour that holds ``ts_ms``."""
    return ts_ms - ts_ms % HOUR_MS


def encode_group(name: str) -> str:
    """A log group name as one path segment value: readable when it fits, hashed when not.

    ``log_group=`` plus the result is at most NAME_MAX bytes (all of it is ASCII).
    """
    readable = quote(name, safe=_SAFE)
    if len(readable) <= _GROUP_VALUE_MAX:
        return readable
    prefix = ""
    for char in name:
        piece = quote(char, safe=_SAFE)
        if len(prefix) + len(piece) > _PREFIX_MAX:
            break
        prefix += piece
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()
    return f"{prefix}{_HASH_MARK}{digest}"


def decode_group(segment: str) -> str | None:
    """The group name of a directory value, or None for a hashed one (it holds no full name)."""
    if _HASH_MARK in segment:
        return None
    return unquote(segment)


def group_dir(data_dir: Path, group: str) -> Path:
    """The Hive-style directory of all of one group's events."""
    return data_dir / LOGS_TABLE_DIR / f"{GROUP_KEY}={encode_group(group)}"


def partition_dir(data_dir: Path, group: str, hour_ms: int) -> Path:
    """The Hive-style directory of one group's events in one UTC hour."""
    hour = datetime.fromtimestamp(hour_ms / 1000, tz=UTC)
    return group_dir(data_dir, group) / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}"


def wal_path(data_dir: Path, generation: int) -> Path:
    return data_dir / WAL_DIR / f"{generation:020d}.wal"


def wal_generation(path: Path) -> int:
    return int(path.stem)
