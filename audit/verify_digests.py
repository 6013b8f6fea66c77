"""Step 2 of ``verify`` (spec audit §4.2.8): the digest chain.

Every ``*.json`` under ``digests/`` is parsed and checked for place, format, key, signature and
linkage to its predecessor. Only digests that pass become references for the segment checks;
the seq range that failed digests leave uncovered is reported on their findings.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.signing import string_to_sign, verify_signature
from audit.verify_format import (
    DIGEST_FORMAT,
    DIGEST_KEYS,
    REASONS,
    SEGMENT_KEYS,
    list_digest_files,
    parse_time,
    read_signature,
)
from audit.verify_report import Finding
from audit.verify_rotation import local_key, retired_problem, trust_backwards

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(slots=True)
class DigestFile:
    path: Path
    relpath: str
    sha256: str
    payload: dict[str, Any] | None
    sig: dict[str, Any] | None
    problem: str | None = None  # why the payload is malformed

    @property
    def seq(self) -> int:
        assert self.payload is not None
        return int(self.payload["digestSeq"])


@dataclass(slots=True)
class ValidDigest:
    seq: int
    relpath: str
    payload: dict[str, Any]
    sha256: str
    signature: str

    @property
    def end_time(self) -> str:
        return str(self.payload["digestEndTime"])

    @property
    def start_time(self) -> str:
        return str(self.payload["digestStartTime"])

    @property
    def head_seq(self) -> int:
        return int(self.payload["chainHeadSeq"])

    @property
    def head_hash(self) -> str:
        return str(self.payload["chainHeadHash"])


@dataclass(slots=True)
class DigestChain:
    files: list[DigestFile]
    valid: list[ValidDigest]
    findings: list[tuple[Finding, DigestFile | None]] = field(default_factory=list)
    uncovered: list[tuple[int, int]] = field(default_factory=list)  # seq ranges
    trail_id: str | None = None


def load_digests(root: Path) -> list[DigestFile]:
    files = []
    for path in list_digest_files(root):
        relpath = path.relative_to(root).as_posix()
        try:
            data = path.read_bytes()
        except OSError as exc:
            files.append(DigestFile(path, relpath, "", None, None, f"unreadable: {exc}"))
            continue
        sha256 = hashlib.sha256(data).hexdigest()
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            files.append(DigestFile(path, relpath, sha256, None, None, f"not JSON: {exc}"))
            continue
        problem = format_problem(payload)
        files.append(
            DigestFile(
                path,
                relpath,
                sha256,
                payload if problem is None else None,
                read_signature(path),
                problem,
            )
        )
    return files


def format_problem(payload: Any) -> str | None:
    """Why ``payload`` is not a well-formed digest, or None."""
    if not isinstance(payload, dict):
        return "not a JSON object"
    missing = [key for key in DIGEST_KEYS if key not in payload]
    if missing:
        return f"missing keys {', '.join(missing)}"
    if payload["digestFormat"] != DIGEST_FORMAT:
        return f"digestFormat is {payload['digestFormat']!r}"
    for key in ("digestSeq", "chainHeadSeq", "eventCount"):
        if not isinstance(payload[key], int) or isinstance(payload[key], bool):
            return f"{key} is not an integer"
    for key in ("trailId", "trailName", "digestPath", "publicKeyFingerprint"):
        if not isinstance(payload[key], str):
            return f"{key} is not a string"
    for key in ("previousDigestSha256", "previousDigestSignature", "previousDigestPath"):
        if payload[key] is not None and not isinstance(payload[key], str):
            return f"{key} is neither a string nor null"
    if payload["reason"] not in REASONS:
        return f"unknown reason {payload['reason']!r}"
    for key in ("digestStartTime", "digestEndTime"):
        try:
            parse_time(payload[key])
        except (TypeError, ValueError):
            return f"{key} is not a UTC timestamp"
    if not isinstance(payload["chainHeadHash"], str) or not _HEX64.fullmatch(
        payload["chainHeadHash"]
    ):
        return "chainHeadHash is not a hex SHA-256"
    if not isinstance(payload["segments"], list):
        return "segments is not a list"
    for segment in payload["segments"]:
        if not isinstance(segment, dict) or any(k not in segment for k in SEGMENT_KEYS):
            return "a segment entry lacks keys"
        if not isinstance(segment["firstSeq"], int) or not isinstance(segment["lastSeq"], int):
            return "a segment's seq range is not integers"
    return None


class _Walker:
    """Walks the digest files in ``digestSeq`` order, keeping the last valid reference."""

    def __init__(
        self,
        root: Path,
        files: list[DigestFile],
        keys: dict[str, Ed25519PublicKey],
        follow_rotations: bool,
    ) -> None:
        self.root = root
        self.files = files
        self.keys = dict(keys)
        self.follow_rotations = follow_rotations
        self.chain = DigestChain(files, [])
        self.ordered = sorted(
            (f for f in files if f.payload is not None), key=lambda f: (f.seq, f.relpath)
        )
        self.pending: list[tuple[Finding, DigestFile | None]] = []  # failures since last valid
        self.retired: dict[str, int] = {}  # fingerprint -> the rotation digest that retired it

    def run(self) -> DigestChain:
        for file in self.files:
            if file.payload is None:
                self._fail(file, "DIGEST_FORMAT_INVALID", f"invalid format: {file.problem}")
        if self.follow_rotations:
            trust_backwards(self.root, self.ordered, self.keys, self._signs)
        self.chain.trail_id = self._trail_id()
        last_seen = 0
        for index, file in enumerate(self.ordered):
            seq = file.seq
            if seq == last_seen:
                self._fail(file, "DIGEST_CHAIN_BROKEN", f"a second digest claims #{seq:08d}")
                continue
            for absent in range(last_seen + 1, seq):
                self.pending.append((_missing(absent), None))
            last_seen = seq
            following = self.ordered[index + 1] if index + 1 < len(self.ordered) else None
            problem = self._check_alone(file, following)
            if problem is not None:
                self._fail(file, *problem)
                continue
            assert file.payload is not None
            signature = self._signature(file, following)
            assert signature is not None
            link = self._check_link(file, signature)
            if link is not None:
                self._fail(file, "DIGEST_CHAIN_BROKEN", link)
                continue
            self._accept(ValidDigest(seq, file.relpath, file.payload, file.sha256, signature))
        self._close_uncovered(None)
        return self.chain

    # ---- checks ------------------------------------------------------------------------------

    def _trail_id(self) -> str | None:
        """The trail's identity: that of the oldest digest signed by a trusted key."""
        for index, file in enumerate(self.ordered):
            following = self.ordered[index + 1] if index + 1 < len(self.ordered) else None
            assert file.payload is not None
            key = self.keys.get(file.payload["publicKeyFingerprint"])
            signature = self._signature(file, following)
            if (
                key is not None
                and signature
                and verify_signature(key, signature, _message(file, file.payload))
            ):
                return str(file.payload["trailId"])
        return None

    def _signs(self, file: DigestFile, key: Ed25519PublicKey) -> bool:
        index = self.ordered.index(file)
        following = self.ordered[index + 1] if index + 1 < len(self.ordered) else None
        signature = self._signature(file, following)
        assert file.payload is not None
        return signature is not None and verify_signature(
            key, signature, _message(file, file.payload)
        )

    def _check_alone(
        self, file: DigestFile, following: DigestFile | None
    ) -> tuple[str, str] | None:
        payload = file.payload
        assert payload is not None
        if payload["digestPath"] != file.relpath:
            return (
                "DIGEST_MOVED",
                f"has been moved from its original location {payload['digestPath']}",
            )
        if self.chain.trail_id is not None and payload["trailId"] != self.chain.trail_id:
            return "DIGEST_CHAIN_BROKEN", f"belongs to another trail ({payload['trailId']})"
        fp = payload["publicKeyFingerprint"]
        key = self.keys.get(fp)
        if key is None:
            return "DIGEST_KEY_UNTRUSTED", f"public key not found for fingerprint {fp}"
        retired = retired_problem(fp, file.seq, self.retired)
        if retired is not None:
            return "DIGEST_KEY_UNTRUSTED", retired
        if file.sig is not None and file.sig.get("publicKeyFingerprint") not in (None, fp):
            return "DIGEST_SIGNATURE_INVALID", "the .sig names another key than the digest"
        signature = self._signature(file, following)
        if signature is None:
            return "DIGEST_SIGNATURE_INVALID", "signature file not found"
        if not verify_signature(key, signature, _message(file, payload)):
            return "DIGEST_SIGNATURE_INVALID", "signature verification failed"
        return None

    def _signature(self, file: DigestFile, following: DigestFile | None) -> str | None:
        """The ``.sig``'s signature, or (if the file is lost) the one the next digest repeats."""
        if file.sig is None and following is None:
            file.sig = read_signature(file.path)  # a running server writes the .sig second
        if file.sig is not None and isinstance(file.sig.get("signature"), str):
            return str(file.sig["signature"])
        if (
            following is not None
            and following.payload is not None
            and following.seq == file.seq + 1
        ):
            repeated = following.payload.get("previousDigestSignature")
            return repeated if isinstance(repeated, str) else None
        return None

    def _check_link(self, file: DigestFile, signature: str) -> str | None:
        payload = file.payload
        assert payload is not None
        previous = self.chain.valid[-1] if self.chain.valid else None
        seq = file.seq
        if seq == 1:
            if payload["previousDigestSeq"] is not None:
                return "the trail's first digest names a predecessor"
            return None
        if payload["previousDigestSeq"] is None:
            return "the chain restarts: no previous digest is named"
        if previous is None:
            return None
        if payload["chainHeadSeq"] < previous.head_seq:
            return (
                f"chainHeadSeq decreases from {previous.head_seq} (#{previous.seq:08d}) "
                f"to {payload['chainHeadSeq']}"
            )
        if previous.seq != seq - 1:
            return None  # the predecessor failed or is missing: that finding explains a mismatch
        if payload["previousDigestSha256"] != previous.sha256:
            return "previousDigestSha256 does not match the previous digest"
        if payload["previousDigestSignature"] != previous.signature:
            return "previousDigestSignature does not match the previous digest's signature"
        if payload["previousDigestPath"] != previous.relpath:
            return "previousDigestPath does not name the previous digest"
        if payload["digestStartTime"] != previous.end_time:
            return (
                f"digestStartTime {payload['digestStartTime']} is not the previous "
                f"digestEndTime {previous.end_time}"
            )
        return None

    # ---- bookkeeping -------------------------------------------------------------------------

    def _fail(self, file: DigestFile, code: str, message: str) -> None:
        finding = Finding(
            code,
            "DIGEST",
            message,
            path=file.relpath,
            digest_seq=file.seq if file.payload is not None else None,
        )
        self.pending.append((finding, file))

    def _accept(self, digest: ValidDigest) -> None:
        self._close_uncovered(digest)
        self.chain.valid.append(digest)
        self._follow_rotation(digest)

    def _close_uncovered(self, digest: ValidDigest | None) -> None:
        """Report the seq range no valid digest covers on the failures that caused it."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        previous = self.chain.valid[-1] if self.chain.valid else None
        low = previous.head_seq + 1 if previous else 1
        if digest is not None:
            segments = digest.payload["segments"]
            high = (segments[0]["firstSeq"] if segments else digest.head_seq + 1) - 1
        else:  # failures at the end: trust their claims only to size the gap
            claimed = [
                int(f.payload["chainHeadSeq"]) for _x, f in pending if f and f.payload is not None
            ]
            high = max(claimed, default=low - 1)
        if high >= low:
            self.chain.uncovered.append((low, high))
            finding = pending[0][0]
            finding.seq_start, finding.seq_end = low, high
            finding.message += f"; seq {low}..{high} not covered by a valid digest"
        self.chain.findings.extend(pending)

    def _follow_rotation(self, digest: ValidDigest) -> None:
        """A valid rotation digest retires its key and vouches for the next (§4.2.5)."""
        nxt = digest.payload.get("nextPublicKeyFingerprint")
        if not isinstance(nxt, str) or nxt == digest.payload["publicKeyFingerprint"]:
            return
        self.retired.setdefault(str(digest.payload["publicKeyFingerprint"]), digest.seq)
        if not self.follow_rotations or nxt in self.keys:
            return
        key = local_key(self.root, nxt)
        if key is not None:
            self.keys[nxt] = key


def check_digest_chain(
    root: Path, keys: dict[str, Ed25519PublicKey], *, follow_rotations: bool = True
) -> DigestChain:
    return _Walker(root, load_digests(root), keys, follow_rotations).run()


def _missing(seq: int) -> Finding:
    return Finding(
        "DIGEST_MISSING",
        "DIGEST",
        f"digest #{seq:08d} not found",
        digest_seq=seq,
        subject=f"#{seq:08d}",
    )


def _message(file: DigestFile, payload: dict[str, Any]) -> bytes:
    return string_to_sign(
        trail_id=str(payload["trailId"]),
        digest_seq=int(payload["digestSeq"]),
        digest_end_time=str(payload["digestEndTime"]),
        digest_path=str(payload["digestPath"]),
        payload_sha256=file.sha256,
        previous_signature=payload["previousDigestSignature"],
    )


__all__ = ["DigestChain", "DigestFile", "ValidDigest", "check_digest_chain", "format_problem"]
