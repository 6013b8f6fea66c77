"""Webhook delivery rules (spec §6.4, §6.5): signing, headers, retry timing, scaling steps.

Pure functions over values, so the outbox worker and the tests share one definition of each rule.
No network and no clock here; ``resolve_secrets`` is the one function that reads anything (an
environment variable or a secret file), because secrets are read at each attempt so that a rotated
secret takes effect without a reload.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from pathlib import Path

from alarms.rules import Adjustment, Retry, Secret
from core.errors import WatchkeepError

__all__ = [
    "EVENTS",
    "SecretUnavailable",
    "backoff_s",
    "headers",
    "is_retryable",
    "resolve_secrets",
    "retry_after_s",
    "retry_wait_s",
    "scaling_adjustment",
    "scaling_step",
    "sign",
    "verify_signature",
]

EVENTS = ("alarm.state_change", "alarm.scaling", "test")
SIGNATURE_TOLERANCE_S = 300
_MAX_RETRY_AFTER_S = 10**9
_RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "watchkeep-event",
        "watchkeep-delivery",
        "watchkeep-attempt",
        "watchkeep-timestamp",
        "watchkeep-signature",
    }
)


class SecretUnavailable(WatchkeepError):
    """Raised when a target's secret cannot be read: the variable is unset or the file unreadable.

    The message names the variable or file, never the secret.
    """

    code = "SecretUnavailable"


def resolve_secrets(
    ref: Secret | list[Secret], *, environ: Mapping[str, str] | None = None
) -> list[bytes]:
    """The secret bytes of every active key, in the order given (rotation: old and new)."""
    env = os.environ if environ is None else environ
    refs = ref if isinstance(ref, list) else [ref]
    if not refs:
        raise SecretUnavailable("the target has no secret configured")
    return [_resolve_one(one, env) for one in refs]


def _resolve_one(ref: Secret, env: Mapping[str, str]) -> bytes:
    if ref.env is not None:
        value = env.get(ref.env)
        if value is None:
            raise SecretUnavailable(
                f"secret environment variable {ref.env} is not set", details={"env": ref.env}
            )
        if not value:
            raise SecretUnavailable(
                f"secret environment variable {ref.env} is empty", details={"env": ref.env}
            )
        return value.encode("utf-8")
    if ref.file is not None:
        try:
            data = Path(ref.file).read_bytes()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise SecretUnavailable(
                f"cannot read secret file {ref.file}: {reason}", details={"file": ref.file}
            ) from None
        # Secret files written by `echo` or by orchestrators usually end in a newline that is
        # not part of the key.
        data = data.rstrip(b"\r\n")
        if not data:
            raise SecretUnavailable(f"secret file {ref.file} is empty", details={"file": ref.file})
        return data
    raise SecretUnavailable("a secret is {env: NAME} or {file: PATH}, and neither is given")


def _digest(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secrets: list[bytes], timestamp: int, body: bytes) -> str:
    """The ``Watchkeep-Signature`` value: one ``v1=<hex>`` per secret, comma-separated."""
    return ",".join(f"v1={_digest(secret, timestamp, body)}" for secret in secrets)


def verify_signature(
    header: str,
    secrets: list[bytes],
    timestamp: int,
    body: bytes,
    now: float,
    tolerance: float = SIGNATURE_TOLERANCE_S,
) -> bool:
    """What a receiver should do: check the timestamp window, then accept any ``v1=`` match.

    ``timestamp`` is the ``Watchkeep-Timestamp`` header, ``now`` the receiver's Unix time in
    seconds, ``body`` the raw request bytes. Comparisons run in constant time.
    """
    if abs(now - timestamp) > tolerance:
        return False
    offered = [part.strip()[3:] for part in header.split(",") if part.strip().startswith("v1=")]
    found = False
    for secret in secrets:
        expected = _digest(secret, timestamp, body)
        for candidate in offered:
            found |= hmac.compare_digest(expected, candidate)
    return found


def headers(
    event: str,
    delivery_id: str,
    attempt: int,
    timestamp: int,
    signature: str,
    static_headers: Mapping[str, str],
) -> dict[str, str]:
    """Request headers of one attempt; static headers never override the protocol headers."""
    out = {k: v for k, v in static_headers.items() if k.lower() not in _RESERVED_HEADERS}
    out.update(
        {
            "Content-Type": "application/json",
            "Watchkeep-Event": event,
            "Watchkeep-Delivery": delivery_id,
            "Watchkeep-Attempt": str(attempt),
            "Watchkeep-Timestamp": str(timestamp),
            "Watchkeep-Signature": signature,
        }
    )
    return out


def is_retryable(status: int | None) -> bool:
    """Whether a failed attempt is retried: no response (``None``), 408, 429 or any 5xx."""
    if status is None:
        return True
    return status in (408, 429) or 500 <= status <= 599


def backoff_s(retry: Retry, k: int, rng: Callable[[], float]) -> float:
    """Full-jitter wait before retry ``k`` (1-based): uniform in [0, min(max, initial*mult^(k-1))].

    ``rng`` returns a float in [0, 1), like ``random.random``.
    """
    try:
        ceiling = min(float(retry.max_backoff), retry.initial_backoff * retry.multiplier ** (k - 1))
    except OverflowError:
        ceiling = float(retry.max_backoff)
    return rng() * ceiling


def retry_after_s(header_value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta seconds or HTTP date); None if unusable.

    A date in the past gives 0. ``now`` is Unix time in seconds.
    """
    if header_value is None:
        return None
    value = header_value.strip()
    if value.isascii() and value.isdigit():
        return float(min(int(value), _MAX_RETRY_AFTER_S))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    try:
        return max(0.0, when.timestamp() - now)
    except (OverflowError, OSError, ValueError):
        return None


def retry_wait_s(
    retry: Retry, k: int, rng: Callable[[], float], retry_after: float | None
) -> float:
    """The wait before retry ``k``: the jittered backoff, or Retry-After when longer, capped."""
    wait = backoff_s(retry, k, rng)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return min(wait, float(retry.max_backoff))


def scaling_step(adjustment: Adjustment, delta: float) -> float | None:
    """The adjustment value for a breach ``delta`` (spec §6.5); None when no step covers it.

    A step ``[lower, upper)`` matches when ``lower <= delta < upper``; a missing bound is
    infinite. Without steps the fixed ``adjustment.value`` applies. For LessThan operators the
    caller passes ``threshold - value`` so that steps stay positive.
    """
    if adjustment.steps is None:
        return adjustment.value
    for step in adjustment.steps:
        lower = float("-inf") if step.lower is None else step.lower
        upper = float("inf") if step.upper is None else step.upper
        if lower <= delta < upper:
            return step.value
    return None


def scaling_adjustment(adjustment: Adjustment, delta: float) -> dict[str, object] | None:
    """The ``adjustment`` object of a scaling body, or None when no step covers ``delta``.

    ``min_adjustment_magnitude`` is counted in capacity units, which only the autoscaler knows,
    so it is passed along for the autoscaler to apply rather than folded into ``value``.
    """
    value = scaling_step(adjustment, delta)
    if value is None:
        return None
    out: dict[str, object] = {"type": adjustment.type, "value": value}
    if adjustment.min_adjustment_magnitude is not None:
        out["min_adjustment_magnitude"] = adjustment.min_adjustment_magnitude
    return out
