"""Signed digests on a real trail (spec audit §4.2.4-4.2.6): payload, signature, linkage,
heartbeats, restarts, anchors, ``state/head.json``, and the signing keys themselves."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.chain import genesis, record_bytes
from audit.digests import DIGEST_KEYS, Digester, DigestError
from audit.segments import list_segments
from audit.signing import (
    SigningKeyError,
    ensure_signing_key,
    fingerprint,
    generate_key,
    load_private_key,
    load_public_key,
    public_key_der,
    public_key_pem,
    string_to_sign,
    verify_signature,
)
from audit.trail import AuditTrail
from tests.audit.test_verify import Clock, append, open_trail


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def trail(tmp_path: Path, clock: Clock) -> Any:
    trail = open_trail(tmp_path / "data" / "audit" / "default", clock)
    yield trail
    trail.close()


def make(trail: AuditTrail, key: Ed25519PrivateKey, clock: Clock, **options: Any) -> Digester:
    return Digester(trail, key, clock=clock, **options)


def load(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    assert record_bytes(json.loads(data)) == data  # canonical bytes
    return json.loads(data)


# ---- payload -----------------------------------------------------------------------------


def test_a_heartbeat_on_an_empty_trail(
    trail: AuditTrail, key: Ed25519PrivateKey, clock: Clock
) -> None:
    path = make(trail, key, clock).write_digest("startup")
    root = trail.config.root
    assert path == root / "digests/2026/01/05/default_00000001_20260105T120000Z.json"
    payload = load(path)
    assert list(payload) == sorted(DIGEST_KEYS)
    assert payload == {
        "digestFormat": "wk-audit-digest-1",
        "trailId": str(trail.trail_id),
        "trailName": "default",
        "accountId": "000000000000",
        "region": "local",
        "digestSeq": 1,
        "digestPath": "digests/2026/01/05/default_00000001_20260105T120000Z.json",
        "reason": "startup",
        "digestStartTime": "2026-01-05T12:00:00Z",
        "digestEndTime": "2026-01-05T12:00:00Z",
        "firstEventSeq": None,
        "lastEventSeq": None,
        "eventCount": 0,
        "chainHeadSeq": 0,
        "chainHeadHash": genesis(trail.trail_id).hex(),
        "oldestEventTime": None,
        "newestEventTime": None,
        "segments": [],
        "previousDigestSeq": None,
        "previousDigestPath": None,
        "previousDigestSha256": None,
        "previousDigestSignature": None,
        "signatureAlgorithm": "Ed25519",
        "publicKeyFingerprint": fingerprint(key.public_key()),
        "nextPublicKeyFingerprint": None,
        "retention": None,
    }


def test_the_signature_covers_the_string_to_sign(
    trail: AuditTrail, key: Ed25519PrivateKey, clock: Clock
) -> None:
    path = make(trail, key, clock).write_digest("manual")
    sig = load(path.with_name(path.name + ".sig"))
    assert list(sig) == ["publicKeyFingerprint", "signature", "signatureAlgorithm"]
    assert sig["signatureAlgorithm"] == "Ed25519"
    assert sig["publicKeyFingerprint"] == fingerprint(key.public_key())
    assert len(bytes.fromhex(sig["signature"])) == 64
    payload = load(path)
    message = string_to_sign(
        trail_id=str(trail.trail_id),
        digest_seq=1,
        digest_end_time="2026-01-05T12:00:00Z",
        digest_path=payload["digestPath"],
        payload_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        previous_signature=None,
    )
    assert (
        message
        == (
            f"WK-AUDIT-DIGEST-1\n{trail.trail_id}\n1\n2026-01-05T12:00:00Z\n{payload['digestPath']}\n"
            f"{hashlib.sha256(path.read_bytes()).hexdigest()}\nnull"
        ).encode()
    )
    assert verify_signature(key.public_key(), sig["signature"], message)
    assert not verify_signature(key.public_key(), sig["signature"], message + b"x")


def test_segments_checkpoints_and_linkage(
    trail: AuditTrail, key: Ed25519PrivateKey, clock: Clock
) -> None:
    digests = make(trail, key, clock, checkpoint_every=3)
    first = digests.write_digest("startup")
    for _ in range(7):
        append(trail, clock)
    clock.advance(300)
    second = digests.write_digest("scheduled")  # seals the WAL itself
    (segment,) = list_segments(trail.config.root)
    table = pq.read_table(segment)
    hashes = dict(
        zip(table.column("seq").to_pylist(), table.column("entry_hash").to_pylist(), strict=True)
    )
    payload = load(second)
    assert payload["segments"] == [
        {
            "path": segment.relative_to(trail.config.root).as_posix(),
            "sha256": hashlib.sha256(segment.read_bytes()).hexdigest(),
            "byteSize": segment.stat().st_size,
            "firstSeq": 1,
            "lastSeq": 7,
            "eventCount": 7,
            "firstPrevHash": genesis(trail.trail_id).hex(),
            "lastEntryHash": trail.head()[1].hex(),
            "oldestEventTime": "2026-01-05T12:00:01Z",
            "newestEventTime": "2026-01-05T12:00:07Z",
            "checkpoints": [[3, hashes[3].hex()], [6, hashes[6].hex()]],
        }
    ]
    previous_sig = load(first.with_name(first.name + ".sig"))["signature"]
    assert {
        k: payload[k]
        for k in payload
        if k.startswith(("previous", "first", "last", "chain", "event", "digestStart"))
    } == {
        "previousDigestSeq": 1,
        "previousDigestPath": first.relative_to(trail.config.root).as_posix(),
        "previousDigestSha256": hashlib.sha256(first.read_bytes()).hexdigest(),
        "previousDigestSignature": previous_sig,
        "firstEventSeq": 1,
        "lastEventSeq": 7,
        "eventCount": 7,
        "chainHeadSeq": 7,
        "chainHeadHash": trail.head()[1].hex(),
        "digestStartTime": "2026-01-05T12:00:00Z",
    }
    clock.advance(300)
    heartbeat = load(digests.write_digest("scheduled"))
    assert (heartbeat["segments"], heartbeat["eventCount"], heartbeat["firstEventSeq"]) == (
        [],
        0,
        None,
    )
    assert (heartbeat["chainHeadSeq"], heartbeat["chainHeadHash"]) == (7, trail.head()[1].hex())
    assert heartbeat["digestStartTime"] == payload["digestEndTime"]


def test_a_restart_continues_the_digest_chain(
    tmp_path: Path, key: Ed25519PrivateKey, clock: Clock
) -> None:
    root = tmp_path / "audit"
    trail = open_trail(root, clock)
    digests = make(trail, key, clock)
    digests.write_digest("startup")
    append(trail, clock)
    last = digests.write_digest("shutdown")
    trail.close()
    clock.advance(3600)
    trail = open_trail(root, clock)
    again = make(trail, key, clock)
    assert again.integrity_problems == []
    assert again.latest is not None and again.latest.seq == 2
    payload = load(again.write_digest("startup"))
    trail.close()
    assert payload["digestSeq"] == 3
    assert payload["previousDigestSha256"] == hashlib.sha256(last.read_bytes()).hexdigest()
    assert payload["digestStartTime"] == "2026-01-05T12:00:01Z"
    assert (payload["chainHeadSeq"], payload["segments"]) == (1, [])


def test_a_tampered_newest_digest_is_skipped_at_startup(
    tmp_path: Path, key: Ed25519PrivateKey, clock: Clock
) -> None:
    root = tmp_path / "audit"
    trail = open_trail(root, clock)
    digests = make(trail, key, clock)
    first = digests.write_digest("startup")
    second = digests.write_digest("shutdown")
    trail.close()
    payload = json.loads(second.read_bytes())
    payload["reason"] = "manual"
    second.write_bytes(record_bytes(payload))
    trail = open_trail(root, clock)
    again = make(trail, key, clock)
    assert again.latest is not None and again.latest.seq == 1
    assert any(
        "default_00000002_" in problem and "signature verification failed" in problem
        for problem in again.integrity_problems
    )
    third = load(again.write_digest("startup"))
    trail.close()
    assert (third["digestSeq"], third["previousDigestSeq"]) == (3, 1)
    assert third["previousDigestSha256"] == hashlib.sha256(first.read_bytes()).hexdigest()


def test_the_head_tripwire_notices_a_shorter_disk(
    tmp_path: Path, key: Ed25519PrivateKey, clock: Clock
) -> None:
    root = tmp_path / "audit"
    trail = open_trail(root, clock)
    digests = make(trail, key, clock)
    append(trail, clock)
    digests.write_digest("shutdown")
    trail.close()
    for segment in list_segments(root):
        segment.unlink()
    trail = open_trail(root, clock)
    again = make(trail, key, clock)
    trail.close()
    assert any("ends at seq 0" in problem for problem in again.integrity_problems)


def test_a_segment_that_does_not_continue_the_chain_is_not_signed(
    trail: AuditTrail, key: Ed25519PrivateKey, clock: Clock
) -> None:
    digests = make(trail, key, clock)
    digests.write_digest("startup")
    append(trail, clock)
    append(trail, clock)
    segment = trail.seal()
    assert segment is not None
    table = pq.read_table(segment)
    rows = table.to_pylist()
    rows[1]["prev_hash"] = b"\x00" * 32
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), segment)
    with pytest.raises(DigestError, match="does not continue the signed chain at seq 2"):
        digests.write_digest("scheduled")
    assert len(list((trail.config.root / "digests").rglob("*.json"))) == 1


def test_scheduled_digests_come_every_interval(
    trail: AuditTrail, key: Ed25519PrivateKey, clock: Clock
) -> None:
    digests = make(trail, key, clock, interval_s=300)
    assert digests.due()
    digests.write_digest("startup")
    clock.advance(299)
    assert digests.maybe_write_digest() is None
    clock.advance(1)
    assert digests.maybe_write_digest() is not None
    assert digests.latest is not None and digests.latest.seq == 2
    with pytest.raises(ValueError, match="unknown digest reason"):
        digests.write_digest("whenever")


# ---- anchors, head.json, files -----------------------------------------------------------


def test_anchors_head_and_file_modes(
    tmp_path: Path, trail: AuditTrail, key: Ed25519PrivateKey, clock: Clock
) -> None:
    anchor = tmp_path / "anchor.jsonl"
    digests = make(trail, key, clock, anchors=[f"file:{anchor}"])
    append(trail, clock)
    path = digests.write_digest("startup")
    sig = json.loads(path.with_name(path.name + ".sig").read_bytes())
    (line,) = anchor.read_text().splitlines()
    assert json.loads(line) == {
        "trailId": str(trail.trail_id),
        "digestSeq": 1,
        "digestEndTime": "2026-01-05T12:00:01Z",
        "digestSha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "signature": sig["signature"],
        "chainHeadSeq": 1,
        "chainHeadHash": trail.head()[1].hex(),
    }
    head = json.loads((trail.config.root / "state" / "head.json").read_bytes())
    assert (head["digestSeq"], head["chainHeadSeq"], head["digestPath"]) == (
        1,
        1,
        path.relative_to(trail.config.root).as_posix(),
    )
    assert path.stat().st_mode & 0o777 == 0o640
    assert path.parent.stat().st_mode & 0o777 == 0o750
    status = digests.status()
    assert (status["latest_digest_seq"], status["unsigned_tail_count"]) == (1, 0)
    append(trail, clock)
    assert digests.status()["unsigned_tail_count"] == 1
    published = trail.config.root / "keys" / f"{fingerprint(key.public_key())}.json"
    assert fingerprint(load_public_key(published)) == fingerprint(key.public_key())


def test_a_failing_anchor_is_counted_and_recorded(
    tmp_path: Path, trail: AuditTrail, key: Ed25519PrivateKey, clock: Clock
) -> None:
    digests = make(trail, key, clock, anchors=[f"file:{tmp_path}/missing/dir/anchor.jsonl"])
    digests.write_digest("startup")  # the digest itself is written all the same
    assert digests.anchor_failures == 1
    _segments, tail = trail.snapshot()
    assert [e.projection["event_name"] for e in tail] == ["AuditAnchorFailure"]


# ---- keys --------------------------------------------------------------------------------


def test_key_files(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "audit-signing.key"
    key = generate_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    with pytest.raises(SigningKeyError, match="already exists"):
        generate_key(path)
    expected = fingerprint(key.public_key())
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert expected == hashlib.sha256(raw).hexdigest()
    assert fingerprint(load_private_key(path).public_key()) == expected
    pem, der = tmp_path / "pub.pem", tmp_path / "pub.der"
    pem.write_text(public_key_pem(key.public_key()))
    der.write_bytes(public_key_der(key.public_key()))
    for source in (path, pem, der):
        assert fingerprint(load_public_key(source)) == expected
    again, generated = ensure_signing_key(path)
    assert not generated and fingerprint(again.public_key()) == expected
    _fresh, generated = ensure_signing_key(tmp_path / "new.key")
    assert generated and (tmp_path / "new.key").exists()
    (tmp_path / "junk").write_text("not a key")
    with pytest.raises(SigningKeyError):
        load_public_key(tmp_path / "junk")
    with pytest.raises(SigningKeyError, match="cannot read"):
        load_private_key(tmp_path / "absent")
