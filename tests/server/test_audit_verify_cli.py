"""A real server signs its audit trail; ``watchkeep audit verify`` checks a copy of the data
directory offline: clean on the untouched copy, precise findings on a tampered one."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx

from audit.segments import list_segments
from tests.conftest import ADMIN_KEY
from tests.server.helpers import ServeProcess, watchkeep_command

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def verify(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*watchkeep_command(), "audit", "verify", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_server_signed_trail_verifies_and_tampering_is_found(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = ServeProcess(data_dir).start()
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        for n in range(12):
            client.put(f"/api/v1/logs/groups/g{n}").raise_for_status()
        status = client.get("/api/v1/audit/status").json()
        assert status["latest_digest_seq"] >= 1  # the startup digest
        assert status["public_key_fingerprint"]
    status_code, output = server.terminate()  # writes the shutdown digest
    assert "audit signing key" in output and "beside the data" in output

    key = data_dir / "audit-signing.key"
    clean = verify(data_dir, "--public-key", str(key), "--format", "json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    report = json.loads(clean.stdout)
    assert report["result"] == "valid"
    assert not [f for f in report["findings"] if f["severity"] == "error"]

    # The auditor's copy with one byte flipped inside a sealed segment.
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    segment = list_segments(copy / "audit" / "default")[0]
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x01
    segment.write_bytes(bytes(data))
    tampered = verify(copy, "--public-key", str(key))
    assert tampered.returncode == 1
    assert "SEGMENT_HASH_MISMATCH" in tampered.stdout

    untrusted = verify(data_dir)  # no trusted key given
    assert untrusted.returncode == 2 and untrusted.stderr.startswith("error:")


def test_keygen_writes_a_key_the_server_signs_with(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "audit.pem"
    key.parent.mkdir()
    made = subprocess.run(
        [*watchkeep_command(), "audit", "keygen", "--out", str(key)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    assert "BEGIN PUBLIC KEY" in made.stdout
    assert key.stat().st_mode & 0o777 == 0o600
    data_dir = tmp_path / "data"
    server = ServeProcess(data_dir, WATCHKEEP_AUDIT_SIGNING_KEY_FILE=str(key)).start()
    _status, output = server.terminate()
    assert "beside the data" not in output
    assert not (data_dir / "audit-signing.key").exists()
    assert verify(data_dir, "--public-key", str(key)).returncode == 0


def test_start_and_stop_are_recorded_and_signed(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    for _ in range(2):
        server = ServeProcess(data_dir).start()
        server.terminate()
    server = ServeProcess(data_dir).start()
    try:
        events = httpx.get(
            f"{server.url}/api/v1/audit/events",
            params={"lookup_key": "EventSource", "lookup_value": "cloudtrail.watchkeep"},
            headers=AUTH,
        ).json()["events"]
    finally:
        server.terminate()
    names = [e["event_name"] for e in reversed(events)]
    assert names == ["ServerStarted", "ServerStopped"] * 2 + ["ServerStarted"]
    assert verify(data_dir, "--public-key", str(data_dir / "audit-signing.key")).returncode == 0
