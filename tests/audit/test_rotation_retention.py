"""Key rotation (spec audit §4.2.5) and retention (§4.2.7) on data written by a real server.

A server runs in a thread against a temp data directory; tests drive it over HTTP and call the
plain functions the scheduler and the CLI call, then check the directory with ``verify``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from audit.chain import record_bytes
from audit.retention import RetentionTooShort, plan_pruning, prune_audit_trail
from audit.segments import list_segments
from audit.signing import fingerprint, load_private_key, sign, string_to_sign
from audit.verify import verify
from audit.verify_report import VerifyReport
from server.cli_verify import register
from server.settings import Settings
from tests.conftest import ADMIN_KEY, RunningServer, make_settings


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def settings_for(data: Path, key: Path) -> Settings:
    return make_settings(data, audit_signing_key_file=key)


def calls(server: RunningServer, n: int) -> None:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    ) as http:
        for _ in range(n):
            assert http.get("/api/v1/audit/status").status_code == 200


def run_server(settings: Settings) -> Iterator[RunningServer]:
    server = RunningServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


def check(data: Path, *keys: Path, **options: Any) -> VerifyReport:
    public = [load_private_key(k).public_key() for k in keys]
    return verify(data / "audit" / "default", public_keys=public, **options)


def errors(report: VerifyReport) -> list[str]:
    return [f"{f.code}: {f.message}" for f in report.findings if f.severity == "error"]


def digests(data: Path) -> list[dict[str, Any]]:
    files = (data / "audit" / "default" / "digests").rglob("*.json")
    found = [json.loads(p.read_bytes()) for p in files if not p.name.startswith(".")]
    return sorted(found, key=lambda d: d["digestSeq"])


def event_names(root: Path) -> list[str]:
    names: list[str] = []
    for path in list_segments(root):
        names += pq.read_table(path, columns=["event_name"]).column(0).to_pylist()
    return names


# ---- rotation ------------------------------------------------------------------------------


@pytest.fixture
def rotated(data: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """Run with key A, stop, `audit rotate-key` to key B, run with key B, stop."""
    key_a, key_b = tmp_path / "a.key", tmp_path / "b.key"
    for server in run_server(settings_for(data, key_a)):
        calls(server, 3)
    result = CliRunner().invoke(
        cli(),
        ["rotate-key", "--data-dir", str(data), "--key-file", str(key_a), "--new-key", str(key_b)],
    )
    assert result.exit_code == 0, result.output
    assert "hands over to" in result.output
    for server in run_server(settings_for(data, key_b)):
        digester = server.app.state.services.digester
        assert digester.integrity_problems == []
        assert digester.fingerprint == fingerprint(load_private_key(key_b).public_key())
        calls(server, 3)
    return data, key_a, key_b


def test_rotation_across_a_restart_is_signed_by_the_old_key_and_linked(
    rotated: tuple[Path, Path, Path],
) -> None:
    data, key_a, key_b = rotated
    fp_a = fingerprint(load_private_key(key_a).public_key())
    fp_b = fingerprint(load_private_key(key_b).public_key())
    chain = digests(data)
    rotation = next(d for d in chain if d["reason"] == "key-rotation")
    after = chain[rotation["digestSeq"]]  # digestSeq is 1-based: this is the next digest
    assert rotation["publicKeyFingerprint"] == fp_a
    assert rotation["nextPublicKeyFingerprint"] == fp_b
    assert after["publicKeyFingerprint"] == fp_b
    assert after["previousDigestSeq"] == rotation["digestSeq"]
    rotation_file = data / "audit" / "default" / rotation["digestPath"]
    assert after["previousDigestSha256"] == hashlib.sha256(rotation_file.read_bytes()).hexdigest()
    assert all(d["publicKeyFingerprint"] == fp_a for d in chain[: rotation["digestSeq"]])
    assert all(d["publicKeyFingerprint"] == fp_b for d in chain[rotation["digestSeq"] :])
    assert "RotateDigestKey" in event_names(data / "audit" / "default")


@pytest.mark.parametrize(
    ("pinned", "follow"),
    [("old", True), ("new", True), ("both", True), ("both", False)],
    ids=["old-key-follows-forward", "new-key-vouches-backward", "both-pinned", "both-no-follow"],
)
def test_a_rotated_trail_verifies_clean(
    rotated: tuple[Path, Path, Path], pinned: str, follow: bool
) -> None:
    data, key_a, key_b = rotated
    keys = {"old": (key_a,), "new": (key_b,), "both": (key_a, key_b)}[pinned]
    report = check(data, *keys, follow_rotations=follow)
    assert errors(report) == []
    assert report.digests_valid == report.digests_total == len(digests(data))


def test_without_following_rotations_the_new_key_is_untrusted(
    rotated: tuple[Path, Path, Path],
) -> None:
    data, key_a, _key_b = rotated
    report = check(data, key_a, follow_rotations=False)
    assert set(report.codes()) >= {"DIGEST_KEY_UNTRUSTED"}
    assert report.exit_status == 1


def test_a_digest_signed_by_an_unknown_key_is_untrusted(
    rotated: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    data, key_a, key_b = rotated
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    resign(copy, digests(copy)[-1], Ed25519PrivateKey.generate())
    report = check(copy, key_a, key_b)
    untrusted = [f for f in report.findings if f.code == "DIGEST_KEY_UNTRUSTED"]
    assert [f.digest_seq for f in untrusted] == [digests(copy)[-1]["digestSeq"]]
    assert "public key not found" in untrusted[0].message


def test_a_retired_key_may_not_sign_after_its_rotation(
    rotated: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """Someone who kept the old key signs a new digest: pinned, but retired."""
    data, key_a, key_b = rotated
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    resign(copy, digests(copy)[-1], load_private_key(key_a))
    report = check(copy, key_a, key_b)
    assert report.codes().count("DIGEST_KEY_UNTRUSTED") == 1
    assert "retired by rotation digest" in report.findings[0].message


def test_rotate_key_refuses_while_the_server_runs(data: Path, tmp_path: Path) -> None:
    key_a = tmp_path / "a.key"
    for _server in run_server(settings_for(data, key_a)):
        result = CliRunner().invoke(
            cli(),
            [
                "rotate-key",
                *("--data-dir", str(data), "--key-file", str(key_a)),
                *("--new-key", str(tmp_path / "b.key")),
            ],
        )
        assert result.exit_code == 1
        assert "stop the server first" in result.output


def resign(root: Path, payload: dict[str, Any], key: Ed25519PrivateKey) -> None:
    """Rewrite ``payload`` as if ``key`` had signed it (what a holder of that key can do)."""
    payload = {**payload, "publicKeyFingerprint": fingerprint(key.public_key())}
    data = record_bytes(payload)
    message = string_to_sign(
        trail_id=payload["trailId"],
        digest_seq=payload["digestSeq"],
        digest_end_time=payload["digestEndTime"],
        digest_path=payload["digestPath"],
        payload_sha256=hashlib.sha256(data).hexdigest(),
        previous_signature=payload["previousDigestSignature"],
    )
    path = root / "audit" / "default" / payload["digestPath"]
    path.write_bytes(data)
    sig = {
        "signatureAlgorithm": "Ed25519",
        "publicKeyFingerprint": payload["publicKeyFingerprint"],
        "signature": sign(key, message),
    }
    path.with_name(path.name + ".sig").write_bytes(record_bytes(sig))


# ---- retention -----------------------------------------------------------------------------


@pytest.fixture
def segmented(data: Path, tmp_path: Path) -> Iterator[tuple[RunningServer, Path]]:
    """A running server whose trail holds four digested segments."""
    key = tmp_path / "a.key"
    for server in run_server(settings_for(data, key)):
        digester = server.app.state.services.digester
        for _ in range(4):
            calls(server, 2)
            digester.write_digest("manual")
        yield server, key


LATER = datetime.now(UTC) + timedelta(days=500)


def test_retention_prunes_old_segments_and_the_trail_still_verifies(
    segmented: tuple[RunningServer, Path], data: Path
) -> None:
    server, key = segmented
    services = server.app.state.services
    root = data / "audit" / "default"
    before = list_segments(root)
    dry = prune_audit_trail(services.trail, services.digester, now=LATER, dry_run=True)
    assert dry.dry_run and len(dry.segments) == len(before) - 1
    assert list_segments(root) == before
    result = prune_audit_trail(services.trail, services.digester, now=LATER)
    assert [s["path"] for s in result.segments] == [s["path"] for s in dry.segments]
    assert list_segments(root)[0] == before[-1]
    retention = digests(data)[-1]["retention"]
    assert digests(data)[-1]["reason"] == "retention"
    assert retention["prunedThroughSeq"] == result.pruned_through_seq
    calls(server, 2)  # lookups and the live trail go on without the pruned files
    report = check(data, key)
    assert errors(report) == []
    assert report.codes().count("SEGMENT_PRUNED") == len(result.segments)
    server.stop()
    assert "PruneAuditSegments" in event_names(root)
    for again in run_server(settings_for(data, key)):  # the chain head survives a restart
        assert again.app.state.services.digester.integrity_problems == []
    assert errors(check(data, key)) == []


def test_nothing_is_pruned_within_retention(segmented: tuple[RunningServer, Path]) -> None:
    server, _key = segmented
    services = server.app.state.services
    result = prune_audit_trail(services.trail, services.digester)
    assert result.segments == [] and result.digest_path is None


def test_retention_under_a_year_needs_an_explicit_opt_in(
    segmented: tuple[RunningServer, Path],
) -> None:
    server, _key = segmented
    services = server.app.state.services
    with pytest.raises(RetentionTooShort, match="365-day floor"):
        prune_audit_trail(services.trail, services.digester, retention_days=30)
    result = prune_audit_trail(
        services.trail, services.digester, retention_days=30, allow_short=True, dry_run=True
    )
    assert result.segments == []


def test_a_segment_deleted_without_a_retention_digest_is_missing(
    segmented: tuple[RunningServer, Path], data: Path, tmp_path: Path
) -> None:
    server, key = segmented
    server.stop()
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    list_segments(copy / "audit" / "default")[1].unlink()
    report = check(copy, key)
    assert {"SEGMENT_MISSING", "CHAIN_BREAK"} <= set(report.codes())
    assert "SEGMENT_PRUNED" not in report.codes()


def seg(path: str, first: int, last: int, newest: str) -> dict[str, Any]:
    return {"path": path, "firstSeq": first, "lastSeq": last, "newestEventTime": newest}


OLD, NEW = "2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z"
CUTOFF = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("signed", "on_disk", "expected"),
    [
        ([seg("a", 1, 2, OLD), seg("b", 3, 4, OLD), seg("c", 5, 6, NEW)], "abc", "ab"),
        ([seg("a", 1, 2, OLD), seg("b", 3, 4, NEW), seg("c", 5, 6, OLD)], "abc", "a"),
        ([seg("a", 1, 2, OLD), seg("b", 3, 4, OLD)], "ab", "a"),
        ([seg("a", 1, 2, OLD), seg("b", 3, 4, OLD), seg("c", 5, 6, OLD)], "bc", "b"),
        ([seg("a", 1, 2, OLD), seg("b", 3, 4, OLD), seg("c", 5, 6, OLD)], "ac", "a"),
        ([seg("a", 1, 2, OLD)], "ax", "a"),
        ([], "x", ""),
    ],
    ids=[
        "old-before-new",
        "stops-at-first-young",
        "keeps-newest-on-disk",
        "skips-already-pruned",
        "stops-at-a-gap",
        "unsigned-newest",
        "nothing-signed",
    ],
)
def test_plan_pruning(signed: list[dict[str, Any]], on_disk: str, expected: str) -> None:
    plan = plan_pruning(signed, list(on_disk), CUTOFF)
    assert "".join(s["path"] for s in plan) == expected
