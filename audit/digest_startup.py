"""What a ``Digester`` checks when it starts (spec audit §4.2.4, §4.2.6): which digest on disk
to link to, and the ``state/head.json`` tripwire.

Only the newest digest files are read: a start-up must not cost a full ``verify``. A digest
counts as the one to link to when this key signed it, or when it is the rotation digest that
handed signing over to this key (§4.2.5). Problems are returned as sentences; the caller
records them. Reads files only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.signing import (
    SigningKeyError,
    fingerprint,
    load_public_key,
    string_to_sign,
    verify_signature,
)
from audit.verify_digests import format_problem
from audit.verify_format import list_digest_files, read_signature


@dataclass(frozen=True, slots=True)
class DigestRef:
    """What the next digest repeats about its predecessor."""

    seq: int
    path: str
    sha256: str
    signature: str
    end_time: str
    chain_head_seq: int
    chain_head_hash: str
    fingerprint: str = ""
    reason: str = ""


@dataclass(slots=True)
class LastDigest:
    ref: DigestRef | None
    next_seq: int
    problems: list[str]


def find_last_digest(root: Path, trail_id: str, key: Ed25519PublicKey) -> LastDigest:
    """The newest digest on disk that passes verification, and the next free ``digestSeq``."""
    files = sorted(list_digest_files(root), key=seq_of_name)
    if not files:
        return LastDigest(None, 1, [])
    found = LastDigest(None, seq_of_name(files[-1]) + 1, [])
    for path in reversed(files):
        ref, problem = checked_ref(root, path, trail_id, key)
        if ref is not None:
            found.ref = ref
            return found
        found.problems.append(f"audit digest {path.name}: {problem}")
    found.problems.append("no audit digest on disk passes verification")
    return found


def checked_ref(
    root: Path, path: Path, trail_id: str, key: Ed25519PublicKey
) -> tuple[DigestRef | None, str]:
    try:
        data = path.read_bytes()
        payload = orjson.loads(data)
    except (OSError, orjson.JSONDecodeError) as exc:
        return None, f"unreadable ({exc})"
    problem = format_problem(payload)
    if problem is not None:
        return None, problem
    if payload["trailId"] != trail_id:
        return None, "belongs to another trail"
    if path.relative_to(root).as_posix() != payload["digestPath"]:
        return None, "has been moved"
    signer, problem = _signer(root, payload, key)
    if signer is None:
        return None, problem
    sig = read_signature(path) or {}
    payload_sha256 = hashlib.sha256(data).hexdigest()
    signature = str(sig.get("signature"))
    if not verify_signature(signer, signature, _message(payload, payload_sha256)):
        return None, "signature verification failed"
    ref = DigestRef(
        payload["digestSeq"],
        payload["digestPath"],
        payload_sha256,
        signature,
        payload["digestEndTime"],
        payload["chainHeadSeq"],
        payload["chainHeadHash"],
        payload["publicKeyFingerprint"],
        payload["reason"],
    )
    return ref, ""


def _signer(
    root: Path, payload: dict[str, Any], key: Ed25519PublicKey
) -> tuple[Ed25519PublicKey | None, str]:
    """The key to check ``payload`` with: ours, or the old key of a rotation to ours."""
    own = fingerprint(key)
    signed_by = payload["publicKeyFingerprint"]
    if signed_by == own:
        return key, ""
    if payload.get("nextPublicKeyFingerprint") != own:
        return None, f"signed by another key ({signed_by[:16]}…) that did not hand over to this one"
    try:
        old = load_public_key(root / "keys" / f"{signed_by}.json")
    except SigningKeyError as exc:
        return None, f"a rotation digest whose old key cannot be read: {exc}"
    if fingerprint(old) != signed_by:
        return None, "a rotation digest whose old key file has another fingerprint"
    return old, ""


def head_problems(root: Path, head_seq: int, last: DigestRef | None, next_seq: int) -> list[str]:
    """Disk behind ``state/head.json`` or the last digest: someone removed data (§4.2.6)."""
    problems = []
    if last is not None and head_seq < last.chain_head_seq:
        problems.append(
            f"the audit trail on disk ends at seq {head_seq} but digest #{last.seq} "
            f"signed seq {last.chain_head_seq}"
        )
    try:
        recorded = orjson.loads((root / "state" / "head.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return problems
    if not isinstance(recorded, dict):
        return problems
    if int(recorded.get("chainHeadSeq") or 0) > head_seq:
        problems.append(
            f"state/head.json records seq {recorded.get('chainHeadSeq')} but the disk "
            f"ends at seq {head_seq}"
        )
    if int(recorded.get("digestSeq") or 0) >= next_seq:
        problems.append(
            f"state/head.json records digest #{recorded.get('digestSeq')} but the newest "
            f"on disk is #{next_seq - 1}"
        )
    return problems


def seq_of_name(path: Path) -> int:
    """The digestSeq in a digest's file name, ``<trail>_<seq:08d>_<end>.json``."""
    try:
        return int(path.stem.rsplit("_", 2)[-2])
    except (ValueError, IndexError):
        return 0


def _message(payload: dict[str, Any], payload_sha256: str) -> bytes:
    return string_to_sign(
        trail_id=payload["trailId"],
        digest_seq=payload["digestSeq"],
        digest_end_time=payload["digestEndTime"],
        digest_path=payload["digestPath"],
        payload_sha256=payload_sha256,
        previous_signature=payload["previousDigestSignature"],
    )


__all__ = ["DigestRef", "LastDigest", "checked_ref", "find_last_digest", "head_problems"]
