"""The scheduled self-check (spec audit §4.2.8): a clean control run, then a flipped byte in a
segment the running server sealed is found, recorded as ``AuditIntegrityFailure`` and shown in
``GetTrailStatus``."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from audit.segments import list_segments
from audit.self_verify import SelfVerifier
from tests.conftest import ADMIN_KEY, RunningServer, make_settings


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    settings = make_settings(tmp_path / "data", audit_signing_key_file=tmp_path / "a.key")
    running = RunningServer(settings).start()
    yield running
    running.stop()


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    ) as client:
        yield client


def recorded(server: RunningServer, name: str) -> list[dict[str, object]]:
    _segments, unsealed = server.app.state.services.trail.snapshot()
    records = [json.loads(e.record_json) for e in unsealed]
    return [r for r in records if r["eventName"] == name]


def test_self_verify_runs_clean_then_catches_a_flipped_byte(
    server: RunningServer, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    services = server.app.state.services
    verifier = SelfVerifier(services.trail, services.digester, full_every=100)
    server.app.state.audit_self_verify = verifier
    first = verifier.run()
    assert (first["result"], first["mode"], first["codes"]) == ("valid", "full", [])
    for _ in range(3):
        http.get("/api/v1/audit/status")
    services.digester.write_digest("manual")
    second = verifier.run()
    assert (second["result"], second["mode"]) == ("valid", "incremental")
    assert second["since"] == first["through"]
    assert recorded(server, "AuditIntegrityFailure") == []

    newest = list_segments(services.trail.config.root)[-1]
    data = bytearray(newest.read_bytes())
    data[0] ^= 0x01  # the leading magic: decodes to the same rows, only the file hash tells
    newest.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR, logger="audit.self_verify"):
        third = verifier.run()
    assert third["result"] == "invalid"
    assert third["codes"] == ["SEGMENT_HASH_MISMATCH"]
    assert "audit self-verify failed: SEGMENT_HASH_MISMATCH" in caplog.text
    [event] = recorded(server, "AuditIntegrityFailure")
    details = event["serviceEventDetails"]
    assert isinstance(details, dict)
    assert details["codes"] == ["SEGMENT_HASH_MISMATCH"] and details["source"] == "self-verify"

    status = http.get("/api/v1/audit/status").json()
    assert status["self_verify"]["result"] == "invalid"
    assert status["self_verify"]["codes"] == ["SEGMENT_HASH_MISMATCH"]
    assert status["integrity_failures_total"] == 1


def test_status_without_a_self_check_says_so(http: httpx.Client) -> None:
    status = http.get("/api/v1/audit/status").json()
    assert status["self_verify"] is None and status["integrity_failures_total"] == 0
