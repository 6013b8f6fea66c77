"""Run ``watchkeep serve`` as a real subprocess, for crash and CLI tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import ADMIN_KEY, MASTER_KEY, wait_until_ready


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def watchkeep_command() -> list[str]:
    return [sys.executable, "-m", "server.cli"]


class ServeProcess:
    def __init__(self, data_dir: Path, *, admin_key: str | None = ADMIN_KEY, **env: str) -> None:
        self.data_dir = data_dir
        self.log_path = data_dir.parent / "serve.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "WATCHKEEP_MASTER_KEY": MASTER_KEY, **env}
        self.env.pop("WATCHKEEP_ADMIN_KEY", None)
        if admin_key is not None:
            self.env["WATCHKEEP_ADMIN_KEY"] = admin_key
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout_s: float = 60.0) -> ServeProcess:
        command = [
            *watchkeep_command(),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        # A file, not a pipe: a pipe nobody reads would block a chatty server.
        self.log_path = self.data_dir.parent / f"serve-{self.port}.log"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, text=True
            )
        process = self.process
        if wait_until_ready(self.url, timeout_s=timeout_s, alive=lambda: process.poll() is None):
            return self
        if process.poll() is not None:
            raise RuntimeError(f"serve exited early: {self.output()}")
        self.kill()
        raise RuntimeError("serve did not become ready")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> tuple[int, str]:
        """SIGTERM, as a service manager stops it; returns the exit status and the output."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
        return self.process.returncode, self.output()

    def output(self) -> str:
        return self.log_path.read_text()
