"""Shared fixtures: real settings in a temp dir, a real uvicorn server on a free port, clients."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from iam import format_key_pair, generate_key_pair, generate_master_key
from server.app import create_app
from server.serving import uvicorn_config
from server.settings import Settings

ADMIN_KEY = format_key_pair(*generate_key_pair())
MASTER_KEY = generate_master_key().decode()


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    return Settings(
        data_dir=data_dir,
        admin_key=ADMIN_KEY,
        master_key=MASTER_KEY,
        flush_interval_s=overrides.pop("flush_interval_s", 3600.0),
        **overrides,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


def wait_until_ready(
    url: str, *, timeout_s: float, alive: Callable[[], bool] = lambda: True
) -> bool:
    """Poll ``/healthz`` until it answers 200; False on time-out or once ``alive()`` is False."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive():
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.03)
    return False


class RunningServer:
    """A watchkeep app served by uvicorn in a thread, on a port of its own."""

    def __init__(self, settings: Settings, **app_options: Any) -> None:
        self.settings = settings
        self.app = create_app(settings, **app_options)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._sock = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn_config(self.app, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]})

    def start(self) -> RunningServer:
        self._thread.start()
        if not wait_until_ready(self.url, timeout_s=30):
            raise RuntimeError("server did not become ready in 30 s")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=60)
        self._sock.close()

    @property
    def store(self):  # noqa: ANN201 - the app's Store, for white-box checks in tests
        return self.app.state.store

    def root_client(self) -> httpx.Client:
        """A client holding the root key (close it, or use it in a ``with``)."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
        )


@pytest.fixture
def server(settings: Settings) -> Iterator[RunningServer]:
    running = RunningServer(settings).start()
    yield running
    running.stop()


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with server.root_client() as c:
        yield c


@pytest.fixture
def anon(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def all_events(client: httpx.Client, group: str) -> list[dict[str, object]]:
    """Every event of a group, following FilterLogEvents' pages to the end."""
    events: list[dict[str, object]] = []
    token = None
    while True:
        params: dict[str, object] = {"group": group, "limit": 10_000}
        if token:
            params["next_token"] = token
        response = client.get("/api/v1/logs/events", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        events += page["events"]
        token = page["next_token"]
        if not token:
            return events


@pytest.fixture
def small_disk(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A real, small tmpfs (size from ``@pytest.mark.disk_size("6m")``, default 8m): a disk
    that really fills up. Mounting needs root; tests using it skip otherwise."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    marker = request.node.get_closest_marker("disk_size")
    size = marker.args[0] if marker else "8m"
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)], check=True
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill_disk(mount_point: Path, *, leave_bytes: int = 0) -> Path:
    """Fill a ``small_disk`` up to ``leave_bytes`` of free space; delete the file to free it."""
    stat = os.statvfs(mount_point)
    filler = mount_point / "filler"
    filler.write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave_bytes))
    return filler
