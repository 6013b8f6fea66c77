"""The ``watchkeep`` command itself: serve (first start, graceful stop), tail, keys."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from iam import KEY_ID_RE, parse_key_pair
from tests.conftest import ADMIN_KEY, RunningServer
from tests.server.helpers import ServeProcess, watchkeep_command

NDJSON = {"Content-Type": "application/x-ndjson"}


def test_first_start_prints_a_root_key_that_works_and_sigterm_flushes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = ServeProcess(data_dir, admin_key=None).start()
    try:
        printed = re.search(r"(WKIA\S+:wks_\S+)", server.output())
        assert printed, server.output()
        key = printed.group(1)
        assert KEY_ID_RE.fullmatch(parse_key_pair(key)[0])
        response = httpx.post(
            f"{server.url}/api/v1/logs/events",
            params={"group": "app"},
            content=b'{"msg":"hello"}\n',
            headers={**NDJSON, "Authorization": f"Bearer {key}"},
        )
        assert response.json() == {"accepted": 1, "rejected": []}
    finally:
        status, output = server.terminate()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why.
    assert status in (0, -signal.SIGTERM), output
    assert list(data_dir.glob("tables/logs/log_group=app/*/*/*.parquet")), "SIGTERM must flush"
    assert key not in (data_dir / "catalog.duckdb").read_bytes().decode("latin-1")

    again = ServeProcess(data_dir, admin_key=None).start()
    try:
        assert "WKIA" not in again.output(), "the root key is printed only once"
        events = httpx.get(
            f"{again.url}/api/v1/logs/events",
            params={"group": "app"},
            headers={"Authorization": f"Bearer {key}"},
        ).json()["events"]
        assert [e["message"] for e in events] == ['{"msg":"hello"}']
    finally:
        again.terminate()


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*watchkeep_command(), *args], capture_output=True, text=True, timeout=60, env=env or None
    )


def test_keys_generate_prints_a_valid_pair() -> None:
    result = run_cli("keys", "generate")
    assert result.returncode == 0
    key_id, _ = parse_key_pair(result.stdout.strip())
    assert KEY_ID_RE.fullmatch(key_id)


def test_tail_prints_events_and_follows(server: RunningServer, client: httpx.Client) -> None:
    client.post(
        "/api/v1/logs/events",
        params={"group": "app", "stream": "a"},
        content=b'{"n":1}\n{"n":2}\n',
        headers=NDJSON,
    )
    result = run_cli("tail", "app", "--server", server.url, "--key", ADMIN_KEY)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(" ", 2)[1:] for line in lines] == [["a", '{"n":1}'], ["a", '{"n":2}']]

    follower = subprocess.Popen(
        [
            *watchkeep_command(),
            "tail",
            "app",
            "-f",
            "--interval-s",
            "0.2",
            "--server",
            server.url,
            "--key",
            ADMIN_KEY,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline().endswith('{"n":1}\n')
        assert follower.stdout.readline().endswith('{"n":2}\n')
        time.sleep(0.3)
        client.post(
            "/api/v1/logs/events",
            params={"group": "app", "stream": "b"},
            content=b'{"n":3}\n',
            headers=NDJSON,
        )
        assert follower.stdout.readline().endswith('b {"n":3}\n')
    finally:
        follower.kill()
        follower.communicate()


def test_cli_errors_are_one_line_and_exit_1(server: RunningServer) -> None:
    result = run_cli("tail", "missing-group", "--server", server.url, "--key", ADMIN_KEY)
    assert result.returncode == 1
    assert result.stderr.startswith("error: log group 'missing-group' does not exist")
    unreachable = run_cli("tail", "app", "--server", "http://127.0.0.1:9", "--key", ADMIN_KEY)
    assert unreachable.returncode == 1 and "cannot reach the server" in unreachable.stderr
    assert run_cli("tail").returncode == 2


def test_serve_ignores_forwarded_for_unless_the_proxy_is_trusted(tmp_path: Path) -> None:
    """With no trusted proxies (the default), a local caller cannot choose the source IP that
    the audit trail records and IAM's wk:SourceIp conditions see."""
    server = ServeProcess(tmp_path / "data").start()
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
        ) as client:
            forged = client.put(
                "/api/v1/logs/groups/forwarded", headers={"X-Forwarded-For": "203.0.113.5"}
            )
            assert forged.status_code == 201, forged.text
            request_id = forged.headers["x-amzn-requestid"]
            found = client.get(
                "/api/v1/audit/events",
                params={"lookup_key": "EventName", "lookup_value": "CreateLogGroup"},
            ).json()["events"]
    finally:
        server.terminate()
    (record,) = [
        r
        for r in (json.loads(e["cloudtrail_event"]) for e in found)
        if r["requestID"] == request_id
    ]
    assert record["sourceIPAddress"] == "127.0.0.1"
