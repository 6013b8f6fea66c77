"""Signed digests of the audit trail (spec audit §4.2.4).

A ``Digester`` seals the trail, then writes a digest naming every segment sealed since the
previous digest (file hash, seq range, chain endpoints, checkpoints), signs it with Ed25519,
and links it to the previous digest by hash and signature. It writes one even when nothing
happened: that heartbeat is what lets ``verify`` notice that the newest digests were deleted.
The order is fixed: payload, then ``.sig`` (each temp file, fsync, rename), then the anchors,
then ``state/head.json``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.anchors import Anchor, anchor_record, parse_anchor
from audit.chain import entry_hash, genesis, record_bytes
from audit.digest_startup import DigestRef, find_last_digest, head_problems
from audit.segments import FILE_MODE, make_dirs, segment_bounds
from audit.signing import ALGORITHM, fingerprint, public_key_pem, sign, string_to_sign
from audit.trail import AuditTrail
from audit.verify_format import (
    DIGEST_FORMAT,
    DIGEST_KEYS,
    REASONS,
    digest_relpath,
    format_time,
    parse_time,
    sha256_file,
)
from store.wal import fsync_path

log = logging.getLogger(__name__)


class DigestError(RuntimeError):
    """Raised when the segments to digest do not continue the signed chain: nothing is signed."""


def write_atomic(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Temp file in the same directory, fsync, rename: a reader sees all or nothing."""
    make_dirs(path.parent)
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    if fsync:
        fsync_path(path.parent)


# ---- the digester ------------------------------------------------------------------------


class Digester:
    def __init__(
        self,
        trail: AuditTrail,
        private_key: Ed25519PrivateKey,
        *,
        interval_s: float = 300.0,
        checkpoint_every: int = 1000,
        anchors: Sequence[Anchor | str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._trail = trail
        self._key = private_key
        self._fingerprint = fingerprint(private_key.public_key())
        self.interval_s = interval_s
        self._checkpoint_every = checkpoint_every
        self._anchors = [parse_anchor(a) if isinstance(a, str) else a for a in anchors]
        self._clock = clock
        self._lock = threading.Lock()
        self._root = trail.config.root
        self.anchor_failures = 0
        self.integrity_problems: list[str] = []
        self._last: DigestRef | None = None
        self._next_seq = 1
        self._last_end_ts: float | None = None
        # The first digest's window starts when digesting started.
        self._started = format_time(clock())
        # Retention and self-verify must not interleave: a segment pruned while a verify run
        # reads the older digests would look deleted.
        self.maintenance_lock = threading.Lock()
        self._retired: list[Ed25519PublicKey] = []  # keys rotated away from in this process
        self._publish_public_key(private_key.public_key())
        last = find_last_digest(self._root, str(trail.trail_id), private_key.public_key())
        self._next_seq = last.next_seq
        self.integrity_problems += last.problems
        if last.ref is not None:
            self._last = last.ref
            self._last_end_ts = parse_time(last.ref.end_time).timestamp()
        self.integrity_problems += head_problems(
            self._root, trail.head()[0], self._last, self._next_seq
        )

    # ---- public ------------------------------------------------------------------------------

    @property
    def latest(self) -> DigestRef | None:
        return self._last

    def due(self) -> bool:
        if self._last_end_ts is None:
            return True
        return self._clock() - self._last_end_ts >= self.interval_s

    def maybe_write_digest(self) -> Path | None:
        """The scheduled digest, if an interval has passed since the last one."""
        return self.write_digest("scheduled") if self.due() else None

    @property
    def fingerprint(self) -> str:
        """The fingerprint of the key that signs the next digest."""
        return self._fingerprint

    @property
    def public_keys(self) -> list[Ed25519PublicKey]:
        """The signing key's public half, then those of keys rotated away from since start."""
        return [self._key.public_key(), *self._retired]

    def write_digest(
        self,
        reason: str,
        *,
        retention: dict[str, Any] | None = None,
        next_key: Ed25519PrivateKey | None = None,
    ) -> Path:
        """Seal the trail, then write, sign and anchor a digest; return the payload's path.

        With ``next_key`` this is the rotation digest (§4.2.5): the current key signs it and
        names ``next_key``'s fingerprint, and every later digest is signed by ``next_key``.
        ``retention`` is the signed record of pruned segments (§4.2.7).
        """
        if reason not in REASONS:
            raise ValueError(f"unknown digest reason {reason!r}")
        with self._lock:
            self._trail.seal(force=True)
            next_fingerprint = None
            if next_key is not None:
                next_fingerprint = fingerprint(next_key.public_key())
                self._publish_public_key(next_key.public_key())
            path = self._write(reason, retention=retention, next_fingerprint=next_fingerprint)
            if next_key is not None:
                self._retired.insert(0, self._key.public_key())
                self._key, self._fingerprint = next_key, fingerprint(next_key.public_key())
            return path

    def status(self) -> dict[str, Any]:
        """Members for ``GetTrailStatus`` (spec §3.3)."""
        head_seq, head_hash = self._trail.head()
        last = self._last
        signed_seq = last.chain_head_seq if last else 0
        return {
            "latest_digest_seq": last.seq if last else None,
            "latest_digest_end_time": last.end_time if last else None,
            "latest_digest_path": last.path if last else None,
            "chain_head_seq": head_seq,
            "chain_head_hash": head_hash.hex(),
            "unsigned_tail_count": head_seq - signed_seq,
            "public_key_fingerprint": self._fingerprint,
            "anchor_failures": self.anchor_failures,
        }

    # ---- writing -----------------------------------------------------------------------------

    def _write(
        self,
        reason: str,
        *,
        retention: dict[str, Any] | None = None,
        next_fingerprint: str | None = None,
    ) -> Path:
        trail, last = self._trail, self._last
        now = self._clock()
        end_time = format_time(now)
        if last is not None and end_time < last.end_time:  # the clock went back: keep order
            end_time = last.end_time
        seq = self._next_seq
        head_seq = last.chain_head_seq if last else 0
        head_hash = last.chain_head_hash if last else _genesis_hex(trail.trail_id)
        segments = self._new_segments(head_seq, head_hash)
        if segments:
            head_seq, head_hash = segments[-1]["lastSeq"], segments[-1]["lastEntryHash"]
        relpath = digest_relpath(trail.config.name, seq, end_time)
        oldest = [s["oldestEventTime"] for s in segments if s["oldestEventTime"]]
        newest = [s["newestEventTime"] for s in segments if s["newestEventTime"]]
        payload: dict[str, Any] = {
            "digestFormat": DIGEST_FORMAT,
            "trailId": str(trail.trail_id),
            "trailName": trail.config.name,
            "accountId": trail.config.account.account_id,
            "region": trail.config.account.region,
            "digestSeq": seq,
            "digestPath": relpath,
            "reason": reason,
            "digestStartTime": last.end_time if last else min(self._started, end_time),
            "digestEndTime": end_time,
            "firstEventSeq": segments[0]["firstSeq"] if segments else None,
            "lastEventSeq": segments[-1]["lastSeq"] if segments else None,
            "eventCount": sum(s["eventCount"] for s in segments),
            "chainHeadSeq": head_seq,
            "chainHeadHash": head_hash,
            "oldestEventTime": min(oldest) if oldest else None,
            "newestEventTime": max(newest) if newest else None,
            "segments": segments,
            "previousDigestSeq": last.seq if last else None,
            "previousDigestPath": last.path if last else None,
            "previousDigestSha256": last.sha256 if last else None,
            "previousDigestSignature": last.signature if last else None,
            "signatureAlgorithm": ALGORITHM,
            "publicKeyFingerprint": self._fingerprint,
            "nextPublicKeyFingerprint": next_fingerprint,
            "retention": retention,
        }
        data = record_bytes(payload)
        payload_sha256 = hashlib.sha256(data).hexdigest()
        message = string_to_sign(
            trail_id=payload["trailId"],
            digest_seq=seq,
            digest_end_time=end_time,
            digest_path=relpath,
            payload_sha256=payload_sha256,
            previous_signature=payload["previousDigestSignature"],
        )
        signature = sign(self._key, message)
        sig = {
            "signatureAlgorithm": ALGORITHM,
            "publicKeyFingerprint": self._fingerprint,
            "signature": signature,
        }
        path = self._root / relpath
        fsync = trail.config.fsync
        write_atomic(path, data, fsync=fsync)
        write_atomic(path.with_name(f"{path.name}.sig"), record_bytes(sig), fsync=fsync)
        self._last = DigestRef(
            seq,
            relpath,
            payload_sha256,
            signature,
            end_time,
            head_seq,
            head_hash,
            self._fingerprint,
            reason,
        )
        self._next_seq = seq + 1
        self._last_end_ts = now
        self._push_anchors(anchor_record(payload, payload_sha256, signature))
        head = {
            "trailId": payload["trailId"],
            "chainHeadSeq": head_seq,
            "chainHeadHash": head_hash,
            "digestSeq": seq,
            "digestPath": relpath,
            "digestEndTime": end_time,
            "digestSha256": payload_sha256,
        }
        write_atomic(self._root / "state" / "head.json", record_bytes(head), fsync=fsync)
        log.debug("audit digest #%d (%s): %d segments", seq, reason, len(segments))
        return path

    def _new_segments(self, head_seq: int, head_hash: str) -> list[dict[str, Any]]:
        """Entries for the segments sealed after ``head_seq``, checked to continue the chain."""
        sealed, _tail = self._trail.snapshot()
        paths = sorted((p for p in sealed if segment_bounds(p)[0] > head_seq), key=segment_bounds)
        entries = []
        for path in paths:
            entry = self._segment_entry(path, head_seq, head_hash)
            head_seq, head_hash = entry["lastSeq"], entry["lastEntryHash"]
            entries.append(entry)
        return entries

    def _segment_entry(self, path: Path, head_seq: int, head_hash: str) -> dict[str, Any]:
        table = pq.read_table(path, columns=["seq", "record_json", "prev_hash", "event_time"])
        seqs = table.column("seq").to_pylist()
        records = table.column("record_json").to_pylist()
        prevs = table.column("prev_hash").to_pylist()
        times = [t for t in table.column("event_time").to_pylist() if t is not None]
        trail_id = self._trail.trail_id
        checkpoints: list[list[Any]] = []
        current = bytes.fromhex(head_hash)
        first_prev = prevs[0].hex() if prevs else None
        for seq, record, prev in zip(seqs, records, prevs, strict=True):
            if seq != head_seq + 1 or prev != current:
                raise DigestError(
                    f"audit segment {path} does not continue the signed chain at seq {seq} "
                    f"(signed head is seq {head_seq}); nothing was signed. Run "
                    "`watchkeep audit verify` on a copy of the data directory"
                )
            current = entry_hash(trail_id, seq, prev, hashlib.sha256(record.encode()).digest())
            head_seq = seq
            if seq % self._checkpoint_every == 0:
                checkpoints.append([seq, current.hex()])
        first, last = seqs[0], seqs[-1]
        return {
            "path": path.relative_to(self._root).as_posix(),
            "sha256": sha256_file(path),
            "byteSize": path.stat().st_size,
            "firstSeq": first,
            "lastSeq": last,
            "eventCount": len(seqs),
            "firstPrevHash": first_prev,
            "lastEntryHash": current.hex(),
            "oldestEventTime": format_time(min(times)) if times else None,
            "newestEventTime": format_time(max(times)) if times else None,
            "checkpoints": checkpoints,
        }

    def _push_anchors(self, record: dict[str, Any]) -> None:
        for anchor in self._anchors:
            try:
                anchor.deliver(record)
            except Exception as exc:  # an anchor outage must not stop the trail (§4.2.6)
                self.anchor_failures += 1
                log.warning("audit anchor %s failed: %s", anchor.name, exc)
                self._record_event(
                    "AuditAnchorFailure",
                    {"anchor": anchor.name, "digestSeq": record["digestSeq"], "error": str(exc)},
                )

    def _record_event(self, name: str, details: dict[str, Any]) -> None:
        try:
            self._trail.append_service_event(name, details)
        except Exception as exc:  # shutting down: the log line has to do
            log.warning("could not record %s: %s", name, exc)

    # ---- start-up ----------------------------------------------------------------------------

    def _publish_public_key(self, key: Ed25519PublicKey) -> None:
        """``keys/<fingerprint>.json``: informational; verify trusts it only when told to, or
        when a trusted rotation digest names it."""
        path = self._root / "keys" / f"{fingerprint(key)}.json"
        if path.exists():
            return
        item = {
            "algorithm": ALGORITHM,
            "fingerprint": fingerprint(key),
            "publicKey": public_key_pem(key),
            "validFrom": format_time(self._clock()),
        }
        write_atomic(path, record_bytes(item), fsync=self._trail.config.fsync)


def _genesis_hex(trail_id: uuid.UUID) -> str:
    return genesis(trail_id).hex()


__all__ = [
    "DIGEST_FORMAT",
    "DIGEST_KEYS",
    "REASONS",
    "DigestError",
    "DigestRef",
    "Digester",
    "write_atomic",
]
