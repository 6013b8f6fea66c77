"""``watchkeep serve`` refuses what it cannot run with in one line, before it starts: no server
traceback, no "listening on" for a server that never listens."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY, MASTER_KEY
from tests.server.helpers import ServeProcess, watchkeep_command


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WATCHKEEP_ADMIN_KEY": ADMIN_KEY, "WATCHKEEP_MASTER_KEY": MASTER_KEY}
    return subprocess.run(
        [*watchkeep_command(), "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("")
    result = serve("--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: the data directory {tmp_path / 'data'} is a file; " \
        "pass --data-dir a directory"  # fmt: skip


def test_a_data_dir_that_cannot_be_created(tmp_path: Path) -> None:
    result = serve("--data-dir", "/proc/watchkeep-data")
    assert result.returncode == 1 and "cannot be used" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_data_dir_another_server_holds(tmp_path: Path) -> None:
    running = ServeProcess(tmp_path / "data").start()
    try:
        result = serve("--data-dir", str(tmp_path / "data"))
    finally:
        running.terminate()
    assert result.returncode == 1, result.stderr
    assert "is in use by another process (PID" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "status", "fragment"),
    [
        (("--log-level", "bogus"), 2, "'bogus' is not one of"),
        (("--port", "99999"), 1, "invalid --port (or WATCHKEEP_PORT)"),
        (("--rules", "/nonexistent-rules"), 1, "--rules /nonexistent-rules: no such file"),
    ],
)
def test_bad_options_are_named(
    tmp_path: Path, args: tuple[str, ...], status: int, fragment: str
) -> None:
    result = serve("--data-dir", str(tmp_path / "data"), *args)
    assert result.returncode == status, result.stderr
    assert fragment in result.stderr, result.stderr


def test_invalid_rules_are_listed_before_the_start(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("alarms:\n  - name: cpu\n    threshold: lots\n")
    result = serve("--data-dir", str(tmp_path / "data"), "--rules", str(rules))
    assert result.returncode == 1, result.stderr
    assert f"--rules {rules} holds invalid rules" in result.stderr
    assert "Traceback" not in result.stderr and "listening on" not in result.stderr
