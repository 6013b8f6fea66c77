"""``watchkeep tail -f`` as a subprocess: each event printed exactly once, however many arrive
between polls and whatever their timestamps, and a restarting or busy server waited out."""

from __future__ import annotations

import http.server
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import ADMIN_KEY, RunningServer
from tests.server.helpers import ServeProcess, watchkeep_command

NDJSON = {"Content-Type": "application/x-ndjson"}
DAY_MS = 86_400_000


class Follower:
    """``watchkeep tail GROUP -f`` in the background, its lines collected as they come."""

    def __init__(self, url: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [*watchkeep_command(), "tail", "app", "-f", "--server", url, "--key", ADMIN_KEY]
            + list(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.printed: list[str] = []
        assert self.process.stdout is not None
        stdout = self.process.stdout
        threading.Thread(target=lambda: [self.lines.put(x) for x in stdout], daemon=True).start()

    def wait_for(self, count: int, timeout_s: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while len(self.printed) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                self.printed.append(self.lines.get(timeout=remaining).rstrip("\n"))
            except queue.Empty:
                break
        assert len(self.printed) >= count, (self.printed, self.stop())
        return self.printed

    def quiet_for(self, seconds: float) -> None:
        """Nothing more is printed for a few polls."""
        time.sleep(seconds)
        extra = []
        while not self.lines.empty():
            extra.append(self.lines.get())
        assert not extra, extra

    def stop(self) -> str:
        self.process.kill()
        _, stderr = self.process.communicate(timeout=10)
        return stderr


@pytest.fixture
def follow() -> Iterator[list[Follower]]:
    followers: list[Follower] = []
    yield followers
    for follower in followers:
        if follower.process.poll() is None:
            follower.stop()


def ingest(url: str, items: list[dict[str, object]], stream: str = "web") -> None:
    response = httpx.post(
        f"{url}/api/v1/logs/events",
        params={"group": "app", "stream": stream},
        content=b"".join(orjson.dumps(item) + b"\n" for item in items),
        headers={**NDJSON, "Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def numbers(lines: list[str]) -> list[int]:
    return [orjson.loads(line.split(" ", 2)[2])["i"] for line in lines]


def test_follow_prints_every_event_once_across_pages_and_backfill(
    server: RunningServer, follow: list[Follower]
) -> None:
    ingest(server.url, [{"i": i} for i in range(3)])
    follower = Follower(server.url, "--page-size", "4", "--interval-s", "0.3")
    follow.append(follower)
    assert numbers(follower.wait_for(3)) == [0, 1, 2]

    # Between two polls: many pages' worth, then an event stamped a month ago (a backfill,
    # which a cursor on time would never show), then events stamped like ones already shown.
    old_ms = int(time.time() * 1000) - 30 * DAY_MS
    ingest(server.url, [{"i": i} for i in range(3, 28)])
    ingest(server.url, [{"i": 28, "timestamp": old_ms}], stream="backfill")
    ingest(server.url, [{"i": i} for i in range(29, 34)])
    lines = follower.wait_for(34)
    follower.quiet_for(1.0)
    assert numbers(lines) == list(range(34))  # each once, in the order they arrived
    backfilled = lines[28].split(" ", 2)
    assert (
        backfilled[0]
        == time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(old_ms // 1000))
        + f".{old_ms % 1000:03d}Z"
    )
    assert backfilled[1] == "backfill"

    # A flush moves the events to Parquet; the cursor neither repeats nor loses any.
    server.store.flush(force=True)
    ingest(server.url, [{"i": 34}])
    assert numbers(follower.wait_for(35)[34:]) == [34]
    follower.quiet_for(0.8)


def test_follow_waits_out_a_restart(tmp_path: Path, follow: list[Follower]) -> None:
    first = ServeProcess(tmp_path / "data").start()
    ingest(first.url, [{"i": 0}, {"i": 1}])
    follower = Follower(first.url, "--interval-s", "0.2")
    follow.append(follower)
    assert numbers(follower.wait_for(2)) == [0, 1]

    first.kill()  # kill -9: the follower's next polls cannot connect
    time.sleep(1.0)
    assert follower.process.poll() is None, "tail -f must wait, not exit"
    second = ServeProcess(tmp_path / "data")
    second.port, second.url = first.port, first.url
    second.start()
    try:
        ingest(second.url, [{"i": 2}, {"i": 3}])
        assert numbers(follower.wait_for(4)) == [0, 1, 2, 3]
        follower.quiet_for(0.6)
        stderr = follower.stop()
    finally:
        second.terminate()
    assert "cannot reach the server" in stderr and "retrying" in stderr, stderr
    assert stderr.count("retrying") == 1, "one notice per outage, not one per attempt"
    assert "resuming" in stderr


class _Busy(http.server.BaseHTTPRequestHandler):
    """Answers like a server under backpressure for its first two requests, then an empty
    page; records when each request came."""

    times: list[float]

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.times.append(time.monotonic())
        if len(self.times) <= 2:
            body = orjson.dumps(
                {"error": {"code": "ServiceUnavailableException", "message": "ingest is paused"}}
            )
            self.send_response(503)
            self.send_header("Retry-After", "1")
        else:
            body = orjson.dumps({"events": [], "next_token": None, "follow_token": "t"})
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def test_follow_honours_retry_after_on_503(follow: list[Follower]) -> None:
    times: list[float] = []
    handler = type("Busy", (_Busy,), {"times": times})
    busy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=busy.serve_forever, daemon=True).start()
    try:
        follower = Follower(f"http://127.0.0.1:{busy.server_address[1]}", "--interval-s", "0.1")
        follow.append(follower)
        deadline = time.monotonic() + 20
        while len(times) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        stderr = follower.stop()
    finally:
        busy.shutdown()
        busy.server_close()
    assert len(times) >= 4, stderr
    assert times[1] - times[0] >= 0.9 and times[2] - times[1] >= 0.9, "Retry-After: 1"
    assert stderr.count("HTTP 503: ingest is paused") == 1, stderr
    assert "resuming" in stderr
