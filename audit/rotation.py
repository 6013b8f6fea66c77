"""Rotating the key that signs audit digests (spec audit §4.2.5).

The rotation is recorded (``RotateDigestKey``, an ``AwsServiceEvent``), then a digest with
``reason:"key-rotation"`` is signed by the **old** key and names the new key's fingerprint in
``nextPublicKeyFingerprint``; every later digest is signed by the new key and links to it as
usual. ``rotate_signing_key`` does this inside a running server; ``rotate_offline`` does it on a
stopped server's data directory (``watchkeep audit rotate-key``), bracketed by a startup and a
shutdown digest so that ``verify`` sees an ordinary, clean stretch of the chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.digest_startup import seq_of_name
from audit.digests import Digester
from audit.record import Account
from audit.signing import fingerprint
from audit.trail import AuditTrail, TrailConfig
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
    ``force`` overrides both.
    """
    last = _newest_digest(root)
    if last is None:
        raise RotationError(f"no audit digest under {root}: start the server once first")
    if last.get("reason") != "shutdown" and not force:
        raise RotationError(
            "the newest audit digest is not a shutdown digest: stop the server first "
            "(or, after a crash, start and stop it once)"
        )
    account = Account(region=str(last["region"]), account_id=str(last["accountId"]))
    name = str(last.get("trailName") or root.name)
    trail = AuditTrail(TrailConfig(root=root, account=account, name=name, fsync=fsync))
    trail.open()
    try:
        digester = Digester(trail, old_key)
        if digester.integrity_problems and not force:
            raise RotationError(
                "the audit trail fails its start-up checks, so the old key should not sign "
                f"anything more: {'; '.join(digester.integrity_problems)}. Run "
                "`watchkeep audit verify` first"
            )
        digester.write_digest("startup")
        rotation = rotate_signing_key(trail, digester, new_key)
        digester.write_digest("shutdown")
    finally:
        trail.close()
    return rotation


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
