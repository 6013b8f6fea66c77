"""Rotating the key that signs audit digests (spec audit §4.2.5).

The rotation is recorded (``RotateDigestKey``, an ``AwsServiceEvent``), then a digest with
``reason:"key-rotation"`` is signed by the **old** key and names the new key's fingerprint in
``nextPublicKeyFingerprint``; every later digest is signed by the new key and links to it as
usual. ``rotate_signing_key`` does this inside a running server; ``rotate_offline`` does it on a
stopped server's data directory (``watchkeep audit rotate-key``), bracketed by a startup and a
shutdown digest so that ``verify`` sees an ordinary, clean stretch of the chain.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.digest_startup import find_last_digest, head_problems, seq_of_name
from audit.digests import Digester
from audit.record import Account
from audit.segments import list_segments, segment_bounds
from audit.signing import fingerprint
from audit.trail import AuditCorrupt, AuditTrail, TrailConfig
from audit.verify_format import list_digest_files


class RotationError(RuntimeError):
    """Raised when a rotation cannot be done safely; nothing was written."""


@dataclass(frozen=True, slots=True)
class Rotation:
    previous_fingerprint: str
    fingerprint: str
    digest_path: Path  # the rotation digest


def rotate_signing_key(
    trail: AuditTrail, digester: Digester, new_key: Ed25519PrivateKey
) -> Rotation:
    """Record the rotation, then sign the rotation digest with the old key; switch keys."""
    old, new = digester.fingerprint, fingerprint(new_key.public_key())
    if old == new:
        raise RotationError(f"the new key is the current signing key ({new}); generate another")
    trail.append_service_event(
        "RotateDigestKey", {"previousPublicKeyFingerprint": old, "publicKeyFingerprint": new}
    )
    path = digester.write_digest("key-rotation", next_key=new_key)
    return Rotation(old, new, path)


def rotate_offline(
    root: Path,
    old_key: Ed25519PrivateKey,
    new_key: Ed25519PrivateKey,
    *,
    force: bool = False,
    fsync: bool = True,
) -> Rotation:
    """Rotate on the data directory of a stopped server (``<data_dir>/audit/<trail>``).

    Refuses unless the newest digest is a ``shutdown`` digest (a running or crashed server
    would otherwise append to the same chain), or when the trail fails its start-up checks;
    ``force`` overrides both. It never overrides a new key that is the current one. Every check
    reads files only and runs before anything is written, so a refusal leaves the trail as it
    was. That no server is using the directory is the caller's to ensure (the CLI holds the
    catalog's lock).
    """
    last = _newest_digest(root)
    if last is None:
        raise RotationError(f"no audit digest under {root}: start the server once first")
    new = fingerprint(new_key.public_key())
    if new in (fingerprint(old_key.public_key()), last.get("publicKeyFingerprint")):
        raise RotationError(f"the new key is the current signing key ({new}); generate another")
    if last.get("reason") != "shutdown" and not force:
        raise RotationError(
            "the newest audit digest is not a shutdown digest: stop the server first "
            "(or, after a crash, start and stop it once)"
        )
    problems = _startup_problems(root, old_key)
    if problems and not force:
        raise RotationError(_problems_message(problems))
    account = Account(region=str(last["region"]), account_id=str(last["accountId"]))
    name = str(last.get("trailName") or root.name)
    trail = AuditTrail(TrailConfig(root=root, account=account, name=name, fsync=fsync))
    try:
        trail.open()
    except AuditCorrupt as exc:
        raise RotationError(str(exc)) from None
    try:
        digester = Digester(trail, old_key)
        # The checks above read the files the way the trail does; this catches whatever
        # opening it found besides, before the old key signs anything.
        if digester.integrity_problems and not force:
            raise RotationError(_problems_message(digester.integrity_problems))
        digester.write_digest("startup")
        rotation = rotate_signing_key(trail, digester, new_key)
        digester.write_digest("shutdown")
    finally:
        trail.close()
    return rotation


def _problems_message(problems: list[str]) -> str:
    return (
        "the audit trail fails its start-up checks, so the old key should not sign anything "
        f"more: {'; '.join(problems)}. Run `watchkeep audit verify` first"
    )


def _startup_problems(root: Path, old_key: Ed25519PrivateKey) -> list[str]:
    """What ``Digester`` would find at start-up, from the files alone (nothing is written)."""
    try:
        state = orjson.loads((root / "state" / "trail.json").read_bytes())
        trail_id = str(uuid.UUID(state["trail_id"]))
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise RotationError(
            f"cannot read the trail identity {root / 'state' / 'trail.json'}: {exc}"
        ) from None
    last = find_last_digest(root, trail_id, old_key.public_key())
    head_seq, wal_problem = _disk_head_seq(root)
    problems = [*last.problems, *head_problems(root, head_seq, last.ref, last.next_seq)]
    if wal_problem:
        problems.append(wal_problem)
    return problems


def _disk_head_seq(root: Path) -> tuple[int, str | None]:
    """The newest seq on disk (sealed segments, then the WAL as the trail replays it), and a
    problem when the WAL needs the recovery that opening the trail would write."""
    segments = list_segments(root)
    head = segment_bounds(segments[-1])[1] if segments else 0
    files = sorted(
        (int(p.stem.split("-", 1)[1]), p)
        for p in (root / "wal").glob("wal-*.jsonl")
        if p.stem.split("-", 1)[1].isdigit()
    )
    for index, (_first, path) in enumerate(files):
        limit = files[index + 1][0] if index + 1 < len(files) else None
        try:
            data = path.read_bytes()
        except OSError as exc:
            return head, f"cannot read the audit WAL {path}: {exc.strerror}"
        lines = data.split(b"\n")
        if lines[-1]:
            return head, f"the audit WAL {path.name} ends in a torn line"
        for line in lines[:-1]:
            try:
                seq = int(orjson.loads(line)["seq"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                return head, f"the audit WAL {path.name} holds a line that is not an entry"
            if limit is not None and seq >= limit:
                break
            if seq <= head:
                continue
            if seq != head + 1:
                return head, f"the audit WAL {path.name} skips from seq {head} to {seq}"
            head = seq
    return head, None


def _newest_digest(root: Path) -> dict[str, object] | None:
    files = sorted(list_digest_files(root), key=seq_of_name)
    if not files:
        return None
    try:
        payload = orjson.loads(files[-1].read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise RotationError(f"cannot read the newest digest {files[-1]}: {exc}") from None
    if not isinstance(payload, dict):
        raise RotationError(f"the newest digest {files[-1]} is not a JSON object")
    return payload


__all__ = ["Rotation", "RotationError", "rotate_offline", "rotate_signing_key"]
