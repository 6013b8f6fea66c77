"""Every row of spec audit §4.2.9: tamper with a copy of a real trail, expect the exact finding.

Each case copies the data directory written by ``build_trail`` (segments 1-8, 9-16, 17-24 in
digests #2-#4, a heartbeat #5, WAL tail 25-28, checkpoints every 5 seqs), changes it the way
an attacker with write access but no key would, and checks the finding codes (as a set), where
they point, and the exit status. Most cases work on the middle segment 9-16 and its seq 12.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.chain import entry_hash, record_bytes
from audit.segments import list_segments, segment_bounds
from audit.signing import fingerprint, sign, string_to_sign
from audit.verify_report import VerifyReport
from tests.audit.test_verify import Built, build_trail, run

K = 12  # the seq most cases tamper with, inside segment 9-16 (checkpoints 10 and 15)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    result, trail = build_trail(tmp_path_factory.mktemp("trail"))
    yield result
    trail.close()


# ---- helpers: what an attacker with write access can do ---------------------------------


def trail_id(root: Path) -> uuid.UUID:
    return uuid.UUID(json.loads((root / "state" / "trail.json").read_text())["trail_id"])


def segment(root: Path, first: int) -> Path:
    return next(p for p in list_segments(root) if segment_bounds(p)[0] == first)


def read(path: Path) -> tuple[list[dict[str, Any]], pa.Schema]:
    table = pq.read_table(path)
    return table.to_pylist(), table.schema


def write(path: Path, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, compression="zstd")


def rewrite(root: Path, first: int, change: Callable[[list[dict[str, Any]]], None]) -> None:
    path = segment(root, first)
    rows, schema = read(path)
    change(rows)
    write(path, rows, schema)


def row_of(rows: list[dict[str, Any]], seq: int) -> dict[str, Any]:
    return next(r for r in rows if r["seq"] == seq)


def edit_record(row: dict[str, Any]) -> None:
    record = json.loads(row["record_json"])
    record["serviceEventDetails"]["index"] = 99
    row["record_json"] = record_bytes(record).decode()


def rehash(row: dict[str, Any], tid: uuid.UUID, prev: bytes | None = None) -> None:
    row["record_sha256"] = hashlib.sha256(row["record_json"].encode()).digest()
    if prev is not None:
        row["prev_hash"] = prev
    row["entry_hash"] = entry_hash(tid, row["seq"], row["prev_hash"], row["record_sha256"])


def digest(root: Path, seq: int) -> Path:
    return next((root / "digests").rglob(f"default_{seq:08d}_*.json"))


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset if offset >= 0 else len(data) + offset] ^= 0x01
    path.write_bytes(bytes(data))


# ---- the tamperings ----------------------------------------------------------------------


def flip_leading_magic(root: Path, built: Built) -> None:
    flip(segment(root, 9), 0)  # decodes to the same rows


def record_flip(path: Path) -> tuple[int, int]:
    """An offset whose flipped bit changes exactly one decoded record_json, and that row.

    The trail compresses with zstd, so where a record's bytes lie depends on its content;
    an attacker would look for such a byte the same way.
    """
    data = path.read_bytes()
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(1)  # record_json
    original = pq.read_table(path).column("record_json").to_pylist()
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    for offset in range(start, start + chunk.total_compressed_size):
        damaged = bytearray(data)
        damaged[offset] ^= 0x01
        try:
            table = pq.ParquetFile(io.BytesIO(bytes(damaged))).read(columns=["record_json"])
            decoded = table.column(0).to_pylist()
        except Exception:
            continue
        if len(decoded) != len(original):
            continue
        changed = [i for i, (a, b) in enumerate(zip(original, decoded, strict=False)) if a != b]
        if len(changed) == 1:
            return offset, changed[0]
    raise AssertionError("no single-record byte found")


def flip_byte_in_a_record(root: Path, built: Built) -> None:
    path = segment(root, 9)
    flip(path, record_flip(path)[0])


def flip_byte_in_the_footer_length(root: Path, built: Built) -> None:
    flip(segment(root, 9), -6)


def rewrite_one_field(root: Path, built: Built) -> None:
    rewrite(root, 9, lambda rows: edit_record(row_of(rows, K)))


def rewrite_one_field_and_its_hashes(root: Path, built: Built) -> None:
    tid = trail_id(root)

    def change(rows: list[dict[str, Any]]) -> None:
        edit_record(row_of(rows, K))
        rehash(row_of(rows, K), tid)

    rewrite(root, 9, change)


def rewrite_one_field_and_the_rest_of_the_chain(root: Path, built: Built) -> None:
    tid = trail_id(root)

    def change(rows: list[dict[str, Any]]) -> None:
        edit_record(row_of(rows, K))
        prev = row_of(rows, K - 1)["entry_hash"]
        for seq in range(K, 17):
            rehash(row_of(rows, seq), tid, prev)
            prev = row_of(rows, seq)["entry_hash"]

    rewrite(root, 9, change)


def change_a_projection_only(root: Path, built: Built) -> None:
    rewrite(root, 9, lambda rows: row_of(rows, K).update(user_name="alice"))


def delete_a_row_in_the_middle(root: Path, built: Built) -> None:
    rewrite(root, 9, lambda rows: rows.remove(row_of(rows, K)))


def insert_a_forged_row_with_a_taken_seq(root: Path, built: Built) -> None:
    tid = trail_id(root)

    def change(rows: list[dict[str, Any]]) -> None:
        forged = dict(row_of(rows, K))
        edit_record(forged)
        rehash(forged, tid)  # it links to K-1 just as the genuine row does
        rows.insert(rows.index(row_of(rows, K)) + 1, forged)

    rewrite(root, 9, change)


def append_a_forged_row_past_the_signed_range(root: Path, built: Built) -> None:
    tid = trail_id(root)

    def change(rows: list[dict[str, Any]]) -> None:
        forged = dict(row_of(rows, 16))
        forged["seq"] = 17
        edit_record(forged)
        rehash(forged, tid, row_of(rows, 16)["entry_hash"])
        rows.append(forged)

    rewrite(root, 9, change)


def swap_two_rows(root: Path, built: Built) -> None:
    def change(rows: list[dict[str, Any]]) -> None:
        a, b = rows.index(row_of(rows, K)), rows.index(row_of(rows, K + 1))
        rows[a], rows[b] = rows[b], rows[a]

    rewrite(root, 9, change)


def swap_the_seqs_of_two_rows(root: Path, built: Built) -> None:
    def change(rows: list[dict[str, Any]]) -> None:
        a, b = row_of(rows, K), row_of(rows, K + 1)
        a["seq"], b["seq"] = b["seq"], a["seq"]
        rows.sort(key=lambda r: r["seq"])  # the file still looks ordered

    rewrite(root, 9, change)


def delete_a_whole_segment(root: Path, built: Built) -> None:
    segment(root, 9).unlink()


def delete_the_newest_digested_segment(root: Path, built: Built) -> None:
    segment(root, 17).unlink()


def drop_in_a_copy_of_a_segment(root: Path, built: Built) -> None:
    source = segment(root, 1)
    shutil.copy(
        source, source.with_name("default_000000000001-000000000008_20260105T130000Z.parquet")
    )


def drop_in_a_forged_continuation(root: Path, built: Built) -> None:
    source = segment(root, 17)
    rows, schema = read(source)
    for row in rows:
        row["seq"] += 100
    write(
        source.with_name("default_000000000117-000000000124_20260105T130000Z.parquet"), rows, schema
    )


def drop_in_a_file_with_any_name(root: Path, built: Built) -> None:
    shutil.copy(segment(root, 1), root / "segments" / "notes.parquet")


def edit_a_digest(root: Path, built: Built) -> None:
    path = digest(root, 3)
    payload = json.loads(path.read_bytes())
    payload["eventCount"] = 7
    path.write_bytes(record_bytes(payload))


def delete_a_digest(root: Path, built: Built) -> None:
    path = digest(root, 3)
    path.unlink()
    path.with_name(path.name + ".sig").unlink()


def resign_a_digest_with_another_key(root: Path, built: Built) -> None:
    other = Ed25519PrivateKey.generate()
    path = digest(root, 3)
    payload = json.loads(path.read_bytes())
    payload["publicKeyFingerprint"] = fingerprint(other.public_key())
    data = record_bytes(payload)
    path.write_bytes(data)
    message = string_to_sign(
        trail_id=payload["trailId"],
        digest_seq=3,
        digest_end_time=payload["digestEndTime"],
        digest_path=payload["digestPath"],
        payload_sha256=hashlib.sha256(data).hexdigest(),
        previous_signature=payload["previousDigestSignature"],
    )
    sig = {
        "signatureAlgorithm": "Ed25519",
        "publicKeyFingerprint": payload["publicKeyFingerprint"],
        "signature": sign(other, message),
    }
    path.with_name(path.name + ".sig").write_bytes(record_bytes(sig))


def move_a_digest(root: Path, built: Built) -> None:
    path = digest(root, 3)
    target = root / "digests" / "2026" / "01" / "04" / path.name
    target.parent.mkdir(parents=True)
    path.rename(target)
    path.with_name(path.name + ".sig").rename(target.with_name(target.name + ".sig"))


def copy_a_digest_from_another_trail(root: Path, built: Built) -> None:
    # Another installation sharing the key, with the same clock: its #5 has our #5's name.
    other, trail = build_trail(root.parents[2] / "other", key=built.key)
    trail.close()
    for suffix in ("", ".sig"):
        source = digest(other.root, 5).with_suffix(".json" + suffix)
        shutil.copy(source, root / source.relative_to(other.root))


def delete_the_newest_segments_and_digests(root: Path, built: Built) -> None:
    for seq in (4, 5):
        path = digest(root, seq)
        path.unlink()
        path.with_name(path.name + ".sig").unlink()
    segment(root, 17).unlink()
    for wal in (root / "wal").glob("*.jsonl"):
        wal.unlink()


def delete_the_newest_rows_of_a_digested_segment(root: Path, built: Built) -> None:
    rewrite(root, 17, lambda rows: rows.__delitem__(slice(-2, None)))


def edit_a_record_in_the_unsigned_wal(root: Path, built: Built) -> None:
    wal = next((root / "wal").glob("*.jsonl"))
    lines = wal.read_bytes().splitlines(keepends=True)
    line = json.loads(lines[2])
    line["record"] = line["record"].replace("Tail", "Tale")
    lines[2] = json.dumps(line).encode() + b"\n"
    wal.write_bytes(b"".join(lines))


def replace_the_anchor_of_a_digest(root: Path, built: Built) -> None:
    anchor = root.parents[2] / "anchor.jsonl"
    lines = [json.loads(line) for line in built.anchor.read_text().splitlines()]
    lines[1]["digestSha256"] = "0" * 64
    anchor.write_text("".join(json.dumps(line) + "\n" for line in lines))


def lose_a_signature_file(root: Path, built: Built) -> None:
    path = digest(root, 3)
    path.with_name(path.name + ".sig").unlink()  # the next digest repeats the signature


@dataclass
class Case:
    tamper: Callable[[Path, Built], None]
    codes: set[str]
    where: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    status: int = 1


MISMATCH = "SEGMENT_HASH_MISMATCH"
CASES = {
    "flip-byte-same-rows": Case(flip_leading_magic, {MISMATCH}),
    "flip-byte-in-record": Case(flip_byte_in_a_record, {MISMATCH, "EVENT_MODIFIED"}),
    "flip-byte-unreadable": Case(
        flip_byte_in_the_footer_length,
        {MISMATCH, "SEGMENT_UNREADABLE", "CHAIN_BREAK"},
        {"CHAIN_BREAK": (17, 17)},
    ),
    "rewrite-field": Case(
        rewrite_one_field, {MISMATCH, "EVENT_MODIFIED"}, {"EVENT_MODIFIED": (K, K)}
    ),
    "rewrite-field-and-row-hashes": Case(
        rewrite_one_field_and_its_hashes, {MISMATCH, "CHAIN_BREAK"}, {"CHAIN_BREAK": (K + 1, K + 1)}
    ),
    "rewrite-field-and-chain": Case(
        rewrite_one_field_and_the_rest_of_the_chain,
        {MISMATCH, "CHAIN_HEAD_MISMATCH", "CHAIN_REWRITTEN"},
        {"CHAIN_REWRITTEN": (11, 15), "CHAIN_HEAD_MISMATCH": (16, 16)},
    ),
    "projection-only": Case(
        change_a_projection_only, {MISMATCH, "PROJECTION_MISMATCH"}, {"PROJECTION_MISMATCH": (K, K)}
    ),
    "delete-row": Case(
        delete_a_row_in_the_middle, {MISMATCH, "EVENT_MISSING"}, {"EVENT_MISSING": (K, K)}
    ),
    "forged-row-duplicate-seq": Case(
        insert_a_forged_row_with_a_taken_seq,
        {MISMATCH, "EVENT_DUPLICATE", "EVENT_INSERTED"},
        {"EVENT_DUPLICATE": (K, K), "EVENT_INSERTED": (K, K)},
    ),
    "forged-row-past-range": Case(
        append_a_forged_row_past_the_signed_range,
        {MISMATCH, "EVENT_INSERTED"},
        {"EVENT_INSERTED": (17, 17)},
    ),
    "swap-rows": Case(
        swap_two_rows, {MISMATCH, "EVENT_REORDERED"}, {"EVENT_REORDERED": (K, K + 1)}
    ),
    "swap-seqs": Case(swap_the_seqs_of_two_rows, {MISMATCH, "EVENT_MODIFIED"}),
    "delete-segment": Case(
        delete_a_whole_segment,
        {"SEGMENT_MISSING", "CHAIN_BREAK"},
        {"SEGMENT_MISSING": (9, 16), "CHAIN_BREAK": (17, 17)},
    ),
    "delete-newest-digested-segment": Case(
        delete_the_newest_digested_segment,
        {"SEGMENT_MISSING", "CHAIN_BREAK"},
        {"CHAIN_BREAK": (24, 24)},
    ),
    "extra-parquet-copy": Case(drop_in_a_copy_of_a_segment, {"SEGMENT_UNREFERENCED"}),
    "extra-parquet-forged": Case(drop_in_a_forged_continuation, {"SEGMENT_UNREFERENCED"}),
    "extra-parquet-any-name": Case(drop_in_a_file_with_any_name, {"SEGMENT_UNREFERENCED"}),
    "edit-digest": Case(edit_a_digest, {"DIGEST_SIGNATURE_INVALID"}),
    "delete-digest": Case(delete_a_digest, {"DIGEST_MISSING"}),
    "resign-digest": Case(resign_a_digest_with_another_key, {"DIGEST_KEY_UNTRUSTED"}),
    "move-digest": Case(move_a_digest, {"DIGEST_MOVED"}),
    "digest-from-another-trail": Case(
        copy_a_digest_from_another_trail, {"DIGEST_CHAIN_BROKEN", "ANCHOR_AHEAD"}
    ),
    "delete-newest-segments-and-digests": Case(
        delete_the_newest_segments_and_digests, {"STALE_DIGEST_CHAIN", "ANCHOR_AHEAD"}
    ),
    "truncate-digested-tail": Case(
        delete_the_newest_rows_of_a_digested_segment,
        {MISMATCH, "TAIL_TRUNCATED", "EVENT_MISSING"},
        {"TAIL_TRUNCATED": (23, 24), "EVENT_MISSING": (23, 24)},
    ),
    "edit-unsigned-wal": Case(
        edit_a_record_in_the_unsigned_wal, {"CHAIN_BREAK"}, {"CHAIN_BREAK": (27, 27)}
    ),
    "replace-anchor": Case(replace_the_anchor_of_a_digest, {"ANCHOR_MISMATCH"}),
    "lose-sig-file": Case(lose_a_signature_file, set(), status=0),
}

INFO_CODES = {"TAIL_UNSIGNED"}


def verify_tampered(root: Path, built: Built) -> VerifyReport:
    replaced = root.parents[2] / "anchor.jsonl"
    return run(root, built, anchors=[replaced if replaced.exists() else built.anchor])


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_tampering_is_caught_with_the_exact_finding(
    built: Built, tmp_path: Path, case: Case
) -> None:
    root = built.copy(tmp_path / "data")
    case.tamper(root, built)
    report = verify_tampered(root, built)
    codes = set(report.codes()) - INFO_CODES
    assert codes == case.codes, report.render_text()
    for code, (start, end) in case.where.items():
        assert (start, end) in {
            (f.seq_start, f.seq_end) for f in report.findings if f.code == code
        }, report.render_text()
    assert report.exit_status == case.status


def test_a_flipped_byte_in_a_record_names_that_record(built: Built, tmp_path: Path) -> None:
    root = built.copy(tmp_path / "data")
    path = segment(root, 9)
    offset, index = record_flip(path)
    seq = read(path)[0][index]["seq"]
    flip(path, offset)
    report = verify_tampered(root, built)
    (modified,) = (f for f in report.findings if f.code == "EVENT_MODIFIED")
    assert (modified.seq_start, modified.path) == (seq, path.relative_to(root).as_posix())


def test_swapped_seqs_are_modified_on_both_rows(built: Built, tmp_path: Path) -> None:
    root = built.copy(tmp_path / "data")
    swap_the_seqs_of_two_rows(root, built)
    report = verify_tampered(root, built)
    modified = [f for f in report.findings if f.code == "EVENT_MODIFIED"]
    assert sorted(f.seq_start for f in modified) == [K, K + 1]
    assert all(f.event_id for f in modified)


def test_the_findings_name_the_segment_and_the_digest(built: Built, tmp_path: Path) -> None:
    root = built.copy(tmp_path / "data")
    rewrite_one_field(root, built)
    report = verify_tampered(root, built)
    relpath = segment(root, 9).relative_to(root).as_posix()
    mismatch, modified = (f for f in report.findings if f.code != "TAIL_UNSIGNED")
    assert (mismatch.path, mismatch.digest_seq, mismatch.kind) == (relpath, 3, "SEGMENT")
    assert mismatch.expected != mismatch.actual
    assert (modified.kind, modified.message) == ("EVENT", "record bytes do not match record_sha256")
    text = report.render_text()
    assert f"SEGMENT  {relpath}   INVALID: SEGMENT_HASH_MISMATCH expected " in text
    assert f"EVENT    seq={K} eventID={modified.event_id}   INVALID: EVENT_MODIFIED" in text
    assert "3/3 segments valid" not in text and "2/3 segments valid" in text
    assert "23/28 records verified" not in text


def test_a_rewritten_chain_verifies_none_of_the_rewritten_rows(
    built: Built, tmp_path: Path
) -> None:
    root = built.copy(tmp_path / "data")
    rewrite_one_field_and_the_rest_of_the_chain(root, built)
    report = verify_tampered(root, built)
    assert (report.records_verified, report.records_total) == (28 - 6, 28)  # seq 11-16


def test_a_failed_digest_reports_the_seq_range_it_leaves_uncovered(
    built: Built, tmp_path: Path
) -> None:
    root = built.copy(tmp_path / "data")
    edit_a_digest(root, built)
    report = verify_tampered(root, built)
    (finding,) = (f for f in report.findings if f.code == "DIGEST_SIGNATURE_INVALID")
    assert (finding.digest_seq, finding.seq_start, finding.seq_end) == (3, 9, 16)
    assert "seq 9..16 not covered by a valid digest" in finding.message


def test_a_flipped_byte_anywhere_in_a_segment_is_caught(built: Built, tmp_path: Path) -> None:
    allowed = {
        MISMATCH,
        "SEGMENT_UNREADABLE",
        "EVENT_MODIFIED",
        "PROJECTION_MISMATCH",
        "CHAIN_BREAK",
        "EVENT_MISSING",
        "EVENT_INSERTED",
        "EVENT_DUPLICATE",
        "EVENT_REORDERED",
        "CHAIN_HEAD_MISMATCH",
        "CHAIN_REWRITTEN",
        "TAIL_TRUNCATED",
        "CLOCK_REGRESSION",  # a flipped byte inside an eventTime can move it backwards
    }
    source = built.copy(tmp_path / "data")
    original = segment(source, 9).read_bytes()
    for offset in range(0, len(original), max(1, len(original) // 40)):
        segment(source, 9).write_bytes(original)
        flip(segment(source, 9), offset)
        report = verify_tampered(source, built)
        codes = set(report.codes()) - INFO_CODES
        assert MISMATCH in codes and codes <= allowed, (offset, report.render_text())
        assert report.exit_status == 1
