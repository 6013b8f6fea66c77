"""The pure webhook rules of spec §6.4 and §6.5: signatures, headers, retry timing, scaling steps."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alarms.rules import Adjustment, Retry, Secret
from alarms.webhook import (
    SecretUnavailable,
    backoff_s,
    headers,
    is_retryable,
    resolve_secrets,
    retry_after_s,
    retry_wait_s,
    scaling_adjustment,
    scaling_step,
    sign,
    verify_signature,
)
from core.errors import WatchkeepError

BODY = b'{"version":"1"}'
TS = 1_767_261_900
# Cross-checked with: printf '%s' '1767261900.{"version":"1"}' | openssl dgst -sha256 -hmac whsec_test
NEW_HEX = "b38c3a06557fe441552bb2d54183a257aa54186b33bc264b4176cf5cfd51ab31"
OLD_HEX = "81e268bc8d76be4460e3ab55645d9e7fd0de305635b2ffcc4268e13c2e9f7500"


# ---- signing


def test_sign_is_lower_hex_hmac_of_timestamp_dot_body() -> None:
    assert sign([b"whsec_test"], TS, BODY) == f"v1={NEW_HEX}"


def test_sign_during_rotation_has_one_entry_per_secret_in_order() -> None:
    header = sign([b"old-secret", b"whsec_test"], TS, BODY)
    assert header == f"v1={OLD_HEX},v1={NEW_HEX}"
    assert re.fullmatch(r"v1=[0-9a-f]{64},v1=[0-9a-f]{64}", header)


@pytest.mark.parametrize("receiver_secret", [b"old-secret", b"whsec_test"], ids=["old", "new"])
def test_a_receiver_knowing_either_rotated_secret_accepts(receiver_secret: bytes) -> None:
    header = sign([b"old-secret", b"whsec_test"], TS, BODY)
    assert verify_signature(header, [receiver_secret], TS, BODY, now=TS + 1)


@pytest.mark.parametrize(
    ("header", "secrets", "timestamp", "body", "now"),
    [
        (f"v1={NEW_HEX}", [b"other"], TS, BODY, TS),
        (f"v1={NEW_HEX}", [b"whsec_test"], TS, BODY + b" ", TS),
        (f"v1={NEW_HEX}", [b"whsec_test"], TS + 1, BODY, TS),
        (f"v1={NEW_HEX}", [b"whsec_test"], TS, BODY, TS + 301),
        (f"v1={NEW_HEX}", [b"whsec_test"], TS, BODY, TS - 301),
        (f"v0={NEW_HEX}", [b"whsec_test"], TS, BODY, TS),
        (NEW_HEX, [b"whsec_test"], TS, BODY, TS),
        ("", [b"whsec_test"], TS, BODY, TS),
        (f"v1={NEW_HEX.upper()}", [b"whsec_test"], TS, BODY, TS),
    ],
    ids=[
        "wrong-secret",
        "body-changed",
        "timestamp-changed",
        "too-old",
        "too-new",
        "unknown-scheme",
        "no-scheme",
        "empty",
        "upper-case",
    ],
)
def test_verify_signature_rejects(
    header: str, secrets: list[bytes], timestamp: int, body: bytes, now: float
) -> None:
    assert not verify_signature(header, secrets, timestamp, body, now=now)


def test_verify_signature_tolerates_spaces_and_exactly_300_seconds() -> None:
    header = f" v1={OLD_HEX} , v1={NEW_HEX} "
    assert verify_signature(header, [b"whsec_test"], TS, BODY, now=TS + 300)
    assert verify_signature(header, [b"whsec_test"], TS, BODY, now=TS - 300)
    assert not verify_signature(header, [b"whsec_test"], TS, BODY, now=TS + 10, tolerance=5)


# ---- secrets


def test_resolve_secrets_reads_env_and_file_in_order(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"from-file\n")
    refs = [Secret(env="WK_A"), Secret(file=str(path))]
    assert resolve_secrets(refs, environ={"WK_A": "from-env"}) == [b"from-env", b"from-file"]
    assert resolve_secrets(Secret(env="WK_A"), environ={"WK_A": "x"}) == [b"x"]


@pytest.mark.parametrize(
    ("ref", "environ", "fragment"),
    [
        (Secret(env="WK_MISSING"), {}, "secret environment variable WK_MISSING is not set"),
        (Secret(env="WK_EMPTY"), {"WK_EMPTY": ""}, "WK_EMPTY is empty"),
        (
            Secret(file="/nonexistent/wk-secret"),
            {},
            "cannot read secret file /nonexistent/wk-secret",
        ),
        ([], {}, "no secret"),
    ],
    ids=["env-unset", "env-empty", "file-missing", "none"],
)
def test_resolve_secrets_names_what_is_missing(
    ref: Secret | list[Secret], environ: dict[str, str], fragment: str
) -> None:
    with pytest.raises(SecretUnavailable, match=re.escape(fragment)) as info:
        resolve_secrets(ref, environ=environ)
    assert isinstance(info.value, WatchkeepError)


def test_secret_errors_never_contain_the_secret(tmp_path: Path) -> None:
    refs = [Secret(env="WK_SET"), Secret(env="WK_UNSET")]
    with pytest.raises(SecretUnavailable) as info:
        resolve_secrets(refs, environ={"WK_SET": "hunter2-very-secret"})
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(info.value.details)


# ---- headers and status classes


def test_headers_carry_the_protocol_and_static_headers_cannot_override_it() -> None:
    out = headers(
        "alarm.state_change",
        "d-1",
        3,
        TS,
        "v1=abc",
        {"X-Team": "web", "watchkeep-attempt": "99", "CONTENT-TYPE": "text/plain"},
    )
    assert out == {
        "X-Team": "web",
        "Content-Type": "application/json",
        "Watchkeep-Event": "alarm.state_change",
        "Watchkeep-Delivery": "d-1",
        "Watchkeep-Attempt": "3",
        "Watchkeep-Timestamp": str(TS),
        "Watchkeep-Signature": "v1=abc",
    }


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (None, True),
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (599, True),
        (400, False),
        (401, False),
        (404, False),
        (410, False),
        (302, False),
        (600, False),
    ],
    ids=lambda v: str(v),
)
def test_is_retryable(status: int | None, retryable: bool) -> None:
    assert is_retryable(status) is retryable


# ---- retry timing


DEFAULT = Retry()


@pytest.mark.parametrize(
    ("k", "ceiling"),
    [(1, 1), (2, 2), (3, 4), (8, 128), (9, 256), (10, 300), (50, 300)],
    ids=lambda v: str(v),
)
def test_backoff_ceiling_doubles_up_to_max_backoff(k: int, ceiling: float) -> None:
    assert backoff_s(DEFAULT, k, lambda: 0.0) == 0.0
    assert backoff_s(DEFAULT, k, lambda: 0.5) == pytest.approx(ceiling / 2)
    assert backoff_s(DEFAULT, k, lambda: 1 - 1e-12) == pytest.approx(ceiling)


def test_backoff_is_full_jitter_within_bounds_with_a_seeded_rng() -> None:
    rng = random.Random(20260101).random
    for k in range(1, 12):
        ceiling = min(300, 2 ** (k - 1))
        waits = [backoff_s(DEFAULT, k, rng) for _ in range(200)]
        assert all(0 <= w < ceiling for w in waits)
        # Full jitter spreads over the whole range, not just near the ceiling.
        assert min(waits) < ceiling * 0.1
        assert max(waits) > ceiling * 0.9


def test_backoff_survives_a_huge_retry_number() -> None:
    retry = Retry(multiplier=1.5, max_backoff=60)
    assert backoff_s(retry, 100_000, lambda: 0.5) == 30


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("Thu, 01 Jan 2026 10:00:30 GMT", 30.0),
        ("Thu, 01 Jan 2026 09:59:00 GMT", 0.0),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("Thu, 01 Jan 2026 10:00:30", None),
        ("٣", None),
    ],
    ids=[
        "seconds",
        "spaces",
        "zero",
        "http-date",
        "date-in-past",
        "negative",
        "fraction",
        "word",
        "empty",
        "absent",
        "date-without-zone",
        "non-ascii-digit",
    ],
)
def test_retry_after_s(value: str | None, expected: float | None) -> None:
    now = datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC).timestamp()
    assert retry_after_s(value, now) == expected


@given(st.integers(min_value=0, max_value=10**8))
def test_retry_after_delta_seconds_round_trip(seconds: int) -> None:
    assert retry_after_s(str(seconds), 0.0) == seconds


@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)),
    st.integers(min_value=0, max_value=86_400 * 365),
)
def test_retry_after_http_date_is_seconds_until_that_date(when: datetime, ahead_s: int) -> None:
    moment = when.replace(microsecond=0, tzinfo=UTC)
    now = moment.timestamp() - ahead_s
    assert retry_after_s(format_datetime(moment, usegmt=True), now) == pytest.approx(ahead_s)


@given(st.text(max_size=60))
def test_retry_after_never_raises(value: str) -> None:
    result = retry_after_s(value, 1_767_261_900.0)
    assert result is None or result >= 0


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(None, 0.5), (0.2, 0.5), (3.0, 3.0), (100.0, 10.0)],
    ids=["no-header", "shorter-than-jitter", "longer-replaces", "capped-at-max-backoff"],
)
def test_retry_wait_s(retry_after: float | None, expected: float) -> None:
    retry = Retry(initial_backoff=1, max_backoff=10)
    assert retry_wait_s(retry, 1, lambda: 0.5, retry_after) == expected


# ---- scaling steps (§6.5)


def make_adjustment(**spec: Any) -> Adjustment:
    return Adjustment.model_validate(spec)


STEPS = make_adjustment(
    type="change_in_capacity",
    steps=[
        {"lower": 0, "upper": 10, "value": 1},
        {"lower": 10, "upper": 25, "value": 2},
        {"lower": 25, "value": 4},
    ],
)
OPEN_BELOW = make_adjustment(
    type="change_in_capacity",
    steps=[{"upper": 0, "value": -1}, {"lower": 0, "upper": 5, "value": 1}],
)


@pytest.mark.parametrize(
    ("adjustment", "delta", "expected"),
    [
        (STEPS, 0, 1),
        (STEPS, 9.999, 1),
        (STEPS, 10, 2),
        (STEPS, 24.5, 2),
        (STEPS, 25, 4),
        (STEPS, 1e12, 4),
        (STEPS, -0.001, None),
        (OPEN_BELOW, -1e9, -1),
        (OPEN_BELOW, 0, 1),
        (OPEN_BELOW, 5, None),
        (make_adjustment(type="exact_capacity", value=6), 123.0, 6),
        (make_adjustment(type="percent_change_in_capacity", value=-20), -3.0, -20),
    ],
    ids=[
        "lower-bound-inclusive",
        "just-below-upper",
        "upper-bound-exclusive",
        "middle-step",
        "open-ended-step",
        "far-above",
        "below-every-step",
        "no-lower-bound",
        "zero-starts-next-step",
        "above-every-step",
        "fixed-value",
        "fixed-percent",
    ],
)
def test_scaling_step(adjustment: Adjustment, delta: float, expected: float | None) -> None:
    assert scaling_step(adjustment, delta) == expected


def test_scaling_adjustment_passes_min_magnitude_to_the_autoscaler() -> None:
    percent = make_adjustment(
        type="percent_change_in_capacity",
        steps=[{"lower": 0, "value": 10}],
        min_adjustment_magnitude=2,
    )
    assert scaling_adjustment(percent, 3.0) == {
        "type": "percent_change_in_capacity",
        "value": 10,
        "min_adjustment_magnitude": 2,
    }
    assert scaling_adjustment(STEPS, 12) == {"type": "change_in_capacity", "value": 2}
    assert scaling_adjustment(STEPS, -1) is None
