"""The audit trail's appender on real files: chain, seal, restart, torn tail, full disk."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from audit.chain import entry_hash, genesis
from audit.record import Account, service_event_record
from audit.segments import list_segments
from audit.trail import AuditCorrupt, AuditTrail, AuditUnavailable, TrailConfig
from tests.conftest import fill_disk

ACCOUNT = Account("local", "000000000000")


def open_trail(root: Path, **overrides: object) -> AuditTrail:
    trail = AuditTrail(TrailConfig(root=root, account=ACCOUNT, **overrides))  # type: ignore[arg-type]
    trail.open()
    return trail


def append(trail: AuditTrail, name: str = "Thing", **details: object) -> int:
    return trail.append(service_event_record(name, dict(details), ACCOUNT)).result().seq


def chain_of(root: Path) -> list[tuple[int, bytes, bytes, bytes]]:
    """(seq, record bytes, prev, hash) of every record, sealed first, then the WAL."""
    rows: list[tuple[int, bytes, bytes, bytes]] = []
    for path in list_segments(root):
        table = pq.read_table(path)
        for row in table.to_pylist():
            rows.append(
                (row["seq"], row["record_json"].encode(), row["prev_hash"], row["entry_hash"])
            )
    for wal in sorted((root / "wal").glob("*.jsonl")):
        for line in wal.read_bytes().splitlines():
            item = json.loads(line)
            rows.append(
                (
                    item["seq"],
                    item["record"].encode(),
                    bytes.fromhex(item["prev"]),
                    bytes.fromhex(item["hash"]),
                )
            )
    return rows


def assert_chain_valid(root: Path) -> int:
    trail_id = uuid.UUID(json.loads((root / "state" / "trail.json").read_text())["trail_id"])
    previous = genesis(trail_id)
    rows = chain_of(root)
    for expected_seq, (seq, data, prev, current) in enumerate(rows, start=1):
        assert seq == expected_seq
        assert prev == previous
        assert current == entry_hash(trail_id, seq, prev, hashlib.sha256(data).digest())
        assert json.loads(data)["additionalEventData"]["watchkeep"]["sequenceNumber"] == seq
        previous = current
    return len(rows)


def test_appends_chain_seal_and_continue_across_restarts(tmp_path: Path) -> None:
    root = tmp_path / "audit"
    trail = open_trail(root)
    assert [append(trail) for _ in range(5)] == [1, 2, 3, 4, 5]
    sealed = trail.seal()
    assert sealed is not None and sealed.exists()
    assert pq.read_schema(sealed).metadata[b"last_entry_hash"].decode() == trail.head()[1].hex()
    append(trail)
    trail.close()  # seals the rest
    assert not any(p.read_bytes() for p in (root / "wal").glob("*.jsonl"))

    again = open_trail(root)
    assert append(again) == 7
    again.close()
    assert assert_chain_valid(root) == 7
    assert (root / "segments").stat().st_mode & 0o777 == 0o750
    assert all(p.stat().st_mode & 0o777 == 0o640 for p in list_segments(root))


def test_seal_when_the_wal_holds_enough_records(tmp_path: Path) -> None:
    trail = open_trail(tmp_path / "audit", segment_max_events=3)
    for _ in range(2):
        append(trail)
    assert trail.maybe_seal() is None
    append(trail)
    assert trail.maybe_seal() is not None
    trail.close()


def test_torn_tail_is_cut_and_recorded(tmp_path: Path) -> None:
    root = tmp_path / "audit"
    trail = open_trail(root)
    for _ in range(3):
        append(trail)
    wal = trail._wal.path  # type: ignore[union-attr]
    trail._closing = True  # simulate a crash: no seal at shutdown
    with wal.open("ab") as handle:
        handle.write(b'{"seq":4,"prev":"00","hash":"11","record":"{\\"half')
    recovered = open_trail(root)
    _segments, tail = recovered.snapshot()
    names = [e.projection["event_name"] for e in tail]
    assert names == ["Thing", "Thing", "Thing", "AuditWalRecovered"]
    details = json.loads(tail[-1].record_json)["serviceEventDetails"]
    assert details["discardedBytes"] > 0
    recovered.close()
    assert assert_chain_valid(root) == 4


def test_records_sealed_before_a_crash_are_not_loaded_twice(tmp_path: Path) -> None:
    root = tmp_path / "audit"
    trail = open_trail(root)
    for _ in range(3):
        append(trail)
    wal_copy = trail._wal.path.read_bytes()  # type: ignore[union-attr]
    wal_name = trail._wal.path  # type: ignore[union-attr]
    trail.seal()
    trail._closing = True
    wal_name.write_bytes(wal_copy)  # as if the crash came between rename and WAL delete
    again = open_trail(root)
    assert again.head()[0] == 3
    assert append(again) == 4
    again.close()
    assert assert_chain_valid(root) == 4


def test_a_wal_that_breaks_the_chain_stops_the_start(tmp_path: Path) -> None:
    root = tmp_path / "audit"
    trail = open_trail(root)
    for _ in range(3):
        append(trail)
    wal = trail._wal.path  # type: ignore[union-attr]
    trail._closing = True
    lines = wal.read_bytes().splitlines(keepends=True)
    forged = json.loads(lines[1])
    forged["record"] = forged["record"].replace("Thing", "Other")
    lines[1] = json.dumps(forged).encode() + b"\n"
    wal.write_bytes(b"".join(lines))
    with pytest.raises(AuditCorrupt, match="does not continue the hash chain"):
        open_trail(root)


@pytest.mark.disk_size("2m")
def test_full_disk_degrades_then_recovers_without_a_gap(small_disk: Path) -> None:
    root = small_disk / "audit"
    trail = open_trail(root)
    append(trail)
    filler = fill_disk(small_disk)
    big = "x" * 20_000
    with pytest.raises(AuditUnavailable, match="audit trail unavailable"):
        for _ in range(200):
            append(trail, pad=big)
    assert trail.degraded
    trail.refused = 3
    assert not trail.try_recover()  # still full
    filler.unlink()
    trail._last_probe = 0.0
    assert trail.try_recover()
    assert not trail.degraded
    _segments, tail = trail.snapshot()
    outage = json.loads(tail[-1].record_json)
    assert outage["eventName"] == "AuditDeliveryFailure"
    assert outage["serviceEventDetails"]["refusedRequests"] == 3
    append(trail)
    trail.close()
    count = assert_chain_valid(root)
    reopened = open_trail(root)
    assert reopened.head()[0] == count
    reopened.close()
