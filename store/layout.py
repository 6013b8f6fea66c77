"""Where things live in the data directory. Pure: builds paths, touches no file.

    <data>/catalog.duckdb                       metadata (groups, streams, segments...)
    <data>/wal/<generation:020d>.wal            write-ahead log files, replayed in order
    <data>/tables/logs/log_group=<enc>/date=YYYY-MM-DD/hour=HH/<segment-id>.parquet

The table files follow Hive's ``key=value`` convention so DuckDB, Spark or any Parquet reader
can read the lake directly; a group name is percent-encoded because it may contain ``/``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote

HOUR_MS = 3_600_000

CATALOG_FILE = "catalog.duckdb"
WAL_DIR = "wal"
LOGS_TABLE_DIR = Path("tables") / "logs"


def hour_floor_ms(ts_ms: int) -> int:
    """Start of the UTC hour that holds ``ts_ms``."""
    return ts_ms - ts_ms % HOUR_MS


def encode_group(name: str) -> str:
    """A log group name as one safe path segment (``/`` and friends percent-encoded)."""
    return quote(name, safe="-_.")


def decode_group(segment: str) -> str:
    return unquote(segment)


def partition_dir(data_dir: Path, group: str, hour_ms: int) -> Path:
    """The Hive-style directory of one group's events in one UTC hour."""
    hour = datetime.fromtimestamp(hour_ms / 1000, tz=UTC)
    return (
        data_dir
        / LOGS_TABLE_DIR
        / f"log_group={encode_group(group)}"
        / f"date={hour:%Y-%m-%d}"
        / f"hour={hour:%H}"
    )


def group_dir(data_dir: Path, group: str) -> Path:
    return data_dir / LOGS_TABLE_DIR / f"log_group={encode_group(group)}"


def wal_path(data_dir: Path, generation: int) -> Path:
    return data_dir / WAL_DIR / f"{generation:020d}.wal"


def wal_generation(path: Path) -> int:
    return int(path.stem)
