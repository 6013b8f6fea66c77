"""Key rotation as ``verify`` sees it (spec audit §4.2.5): which keys a digest may be signed by.

A rotation digest is signed by the old key and names the new one in
``nextPublicKeyFingerprint``. Trust then flows both ways along the chain:

* forward: a trusted rotation digest vouches for the new key (its public key is read from
  ``keys/<fingerprint>.json``, and only accepted if its fingerprint matches the signed one);
* backward: the first digest under a trusted new key repeats the SHA-256 of the rotation digest
  (``previousDigestSha256``), so that rotation digest's bytes, and with them the old key's
  fingerprint, are vouched for; the old key is then trusted for the digests before it.

A key is valid until the rotation digest that hands over from it: a later digest signed by a
retired key is ``DIGEST_KEY_UNTRUSTED``, even when that key is pinned. No writing here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.signing import SigningKeyError, fingerprint, load_public_key


class _File(Protocol):
    @property
    def seq(self) -> int: ...

    sha256: str
    payload: dict[str, object] | None


F = TypeVar("F", bound=_File)


def local_key(root: Path, wanted: str) -> Ed25519PublicKey | None:
    """The public key published as ``keys/<wanted>.json``, if its fingerprint is ``wanted``."""
    try:
        key = load_public_key(root / "keys" / f"{wanted}.json")
    except SigningKeyError:
        return None
    return key if fingerprint(key) == wanted else None


def trust_backwards(
    root: Path,
    ordered: Sequence[F],
    keys: dict[str, Ed25519PublicKey],
    signs: Callable[[F, Ed25519PublicKey], bool],
) -> None:
    """Add to ``keys`` the old keys of rotations that a trusted successor vouches for.

    ``signs(file, key)`` says whether ``key`` made the file's signature. Newest first, so that
    a chain of rotations is walked back in one pass.
    """
    for index in range(len(ordered) - 2, -1, -1):
        old, new = ordered[index], ordered[index + 1]
        if old.payload is None or new.payload is None or new.seq != old.seq + 1:
            continue
        old_fp = old.payload["publicKeyFingerprint"]
        new_fp = new.payload["publicKeyFingerprint"]
        if not isinstance(old_fp, str) or old_fp in keys:
            continue
        if old.payload.get("nextPublicKeyFingerprint") != new_fp or new_fp not in keys:
            continue
        if new.payload.get("previousDigestSha256") != old.sha256 or not signs(new, keys[new_fp]):
            continue
        key = local_key(root, old_fp)
        if key is not None and signs(old, key):
            keys[old_fp] = key


def retired_problem(fp: str, seq: int, retired: dict[str, int]) -> str | None:
    """Why digest ``seq`` may not be signed by ``fp``: a rotation before it retired the key."""
    at = retired.get(fp)
    if at is None or seq <= at:
        return None
    return f"key {fp} was retired by rotation digest #{at:08d} and may not sign later digests"


__all__ = ["local_key", "retired_problem", "trust_backwards"]
