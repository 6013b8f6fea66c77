"""``watchkeep audit`` verbs given awkward input next to a real server: rotate-key while the
server runs or with a key that cannot rotate, lookup under the LookupEvents rate limit, an
acknowledgement that names another report, and verify --server when the server cannot answer."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from audit.reports.sidecar import SIDECAR_HEADER
from audit.signing import generate_key
from server.cli import app
from tests.conftest import ADMIN_KEY, RunningServer, make_settings
from tests.server.helpers import ServeProcess, free_port

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["audit", *args])
    # A clean refusal is typer.Exit (SystemExit): never a traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def calls(url: str, n: int) -> None:
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
        for _ in range(n):
            http.get("/api/v1/audit/status").raise_for_status()


# ---- rotate-key ----------------------------------------------------------------------------


def test_rotate_key_refuses_a_running_server_even_with_force(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = ServeProcess(data_dir).start()
    try:
        before = snapshot(data_dir / "audit" / "default" / "digests")
        code, _out, err = invoke(
            "rotate-key",
            *("--data-dir", str(data_dir), "--new-key", str(tmp_path / "b.key"), "--force"),
        )
        assert code == 1
        assert server.process is not None
        assert f"PID {server.process.pid}" in err and "stop the server first" in err
        assert snapshot(data_dir / "audit" / "default" / "digests") == before
        assert not (tmp_path / "b.key").exists()
    finally:
        server.terminate()


@pytest.fixture
def stopped(tmp_path: Path) -> tuple[Path, Path]:
    """A data directory a server signed with key A and then stopped cleanly."""
    data_dir, key = tmp_path / "data", tmp_path / "a.key"
    server = RunningServer(make_settings(data_dir, audit_signing_key_file=key)).start()
    try:
        calls(server.url, 3)
    finally:
        server.stop()
    return data_dir, key


def test_a_failed_forced_rotation_writes_nothing(stopped: tuple[Path, Path]) -> None:
    data_dir, key = stopped
    before = snapshot(data_dir / "audit")
    code, _out, err = invoke(
        "rotate-key",
        *("--data-dir", str(data_dir), "--key-file", str(key), "--new-key", str(key), "--force"),
    )
    assert code == 1
    assert "the new key is the current signing key" in err
    assert snapshot(data_dir / "audit") == before


def test_a_failed_rotation_leaves_no_new_key_behind(tmp_path: Path) -> None:
    key = tmp_path / "a.key"
    generate_key(key)
    new_key = tmp_path / "b.key"
    code, _out, err = invoke(
        "rotate-key",
        *("--data-dir", str(tmp_path / "empty"), "--key-file", str(key)),
        *("--new-key", str(new_key)),
    )
    assert code == 1 and "no audit digest" in err
    assert not new_key.exists()


def test_rotate_key_does_not_create_the_new_keys_directory(stopped: tuple[Path, Path]) -> None:
    data_dir, key = stopped
    new_key = data_dir.parent / "missing" / "b.key"
    code, _out, err = invoke(
        "rotate-key",
        *("--data-dir", str(data_dir), "--key-file", str(key), "--new-key", str(new_key)),
    )
    assert code == 1 and "does not exist" in err
    assert not new_key.parent.exists()


# ---- lookup --------------------------------------------------------------------------------


@pytest.fixture
def throttled(tmp_path: Path) -> Iterator[RunningServer]:
    """A server allowing one LookupEvents call a second, holding over 150 audit records."""
    settings = make_settings(tmp_path / "data", audit_lookup_rate=1.0)
    server = RunningServer(settings).start()
    try:
        calls(server.url, 160)
        yield server
    finally:
        server.stop()


def test_lookup_waits_out_throttling(throttled: RunningServer) -> None:
    code, out, err = invoke(
        "lookup",
        *("--max", "150", "--format", "json", "--server", throttled.url, "--key", ADMIN_KEY),
    )
    assert code == 0, err
    events = json.loads(out)
    assert len(events) == 150
    assert len({e["event_id"] for e in events}) == 150


@pytest.mark.parametrize(
    "args",
    [("--format", "xml"), ("--max", "0"), ("--max", "-1")],
    ids=["format-xml", "max-0", "max-negative"],
)
def test_lookup_refuses_bad_usage_before_asking(args: tuple[str, ...]) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    code, out, _err = invoke("lookup", *args, "--server", unreachable, "--key", ADMIN_KEY)
    assert code == 2
    assert out == ""


# ---- report-ack ----------------------------------------------------------------------------


def test_report_ack_refuses_a_report_id_that_is_not_the_files(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", audit_signing_key_file=tmp_path / "a.key")
    server = RunningServer(settings).start()
    try:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as http:
            response = http.get("/api/v1/audit/report", params={"template": "access-denied"})
            response.raise_for_status()
            other = http.get("/api/v1/audit/report", params={"template": "access-denied"})
        sidecar = json.loads(base64.urlsafe_b64decode(response.headers[SIDECAR_HEADER]))
        other_id = json.loads(base64.urlsafe_b64decode(other.headers[SIDECAR_HEADER]))["reportId"]
        assert other_id != sidecar["reportId"]
        report = tmp_path / "report.json"
        report.write_bytes(response.content)
        (tmp_path / "report.json.sig.json").write_text(json.dumps(sidecar))
        code, _out, err = invoke(
            "report-ack",
            *("--report-id", other_id, "--file", str(report)),
            *("--server", server.url, "--key", ADMIN_KEY),
        )
        assert code == 2
        assert sidecar["reportId"] in err
        assert not (tmp_path / "report.json.ack.json").exists()
        same, _out, err = invoke(
            "report-ack",
            *("--report-id", sidecar["reportId"], "--file", str(report)),
            *("--server", server.url, "--key", ADMIN_KEY),
        )
        assert same == 0, err
    finally:
        server.stop()


# ---- verify --server -----------------------------------------------------------------------


def test_verify_could_not_check_the_live_head_is_not_invalid(
    stopped: tuple[Path, Path], tmp_path: Path
) -> None:
    data_dir, key = stopped
    base = ("verify", "--data-dir", str(data_dir), "--public-key", str(key))
    code, _out, _err = invoke(*base)
    assert code == 0
    unreachable = f"http://127.0.0.1:{free_port()}"
    code, _out, err = invoke(*base, "--server", unreachable, "--key", ADMIN_KEY)
    assert code == 2 and "cannot reach the server" in err
    server = RunningServer(make_settings(tmp_path / "other")).start()
    try:
        code, _out, err = invoke(*base, "--server", server.url, "--key", "WKIAXXXX:wks_nope")
    finally:
        server.stop()
    assert code == 2 and "check --key" in err
    code, _out, err = invoke(*base, "--server", unreachable)
    assert code == 2 and "--key" in err
