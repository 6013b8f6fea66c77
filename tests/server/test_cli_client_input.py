"""The client verbs on bad input: a name is one path segment whatever it holds, a redirect or
a server that is not watchkeep is an error, and a bad --key or --server is named without
printing the secret."""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ADMIN_KEY, RunningServer
from tests.server.helpers import watchkeep_command


def wk(server: str, *args: str, key: str = ADMIN_KEY) -> tuple[int, str]:
    result = subprocess.run(
        [*watchkeep_command(), *args, "--server", server, "--key", key],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stdout + result.stderr


def users(client: httpx.Client) -> list[str]:
    return sorted(u["user_name"] for u in client.get("/api/v1/iam/users").json()["users"])


def test_a_name_is_one_path_segment(server: RunningServer, client: httpx.Client) -> None:
    client.put("/api/v1/iam/users/bob").raise_for_status()
    client.put("/api/v1/iam/users/a").raise_for_status()
    status, output = wk(server.url, "users", "delete", "a?force=1")
    assert status == 1 and "a?force=1" in output, output  # no such user; "a" is untouched
    status, output = wk(server.url, "users", "delete", "bob/policies/p")
    assert status == 1, output
    status, output = wk(server.url, "users", "create", "%2e")
    assert status == 1 and "invalid user name" in output, output
    assert users(client) == ["a", "bob"]


@pytest.mark.parametrize(
    "args",
    [
        ("users", "delete", ""),
        ("users", "create", ""),
        ("groups", "create", ""),
        ("keys", "deactivate", ""),
        ("keys", "list", "--user", ""),
    ],
)
def test_an_empty_name_is_a_usage_error(server: RunningServer, args: tuple[str, ...]) -> None:
    status, output = wk(server.url, *args)
    assert status == 2 and "a name is empty" in output, output


@pytest.mark.parametrize(
    ("prefix", "suffix"), [("", " x"), ("é", "")], ids=["inner-space", "non-ascii"]
)
def test_a_bad_key_is_named_without_its_secret(
    server: RunningServer, prefix: str, suffix: str
) -> None:
    # Built here, not in the parameters: the root key differs between test processes.
    status, output = wk(server.url, "keys", "list", key=prefix + ADMIN_KEY + suffix)
    assert status == 2 and "--key is not an access key pair" in output, output
    assert ADMIN_KEY.split(":")[1] not in output


def test_a_key_with_a_trailing_newline_still_works(server: RunningServer) -> None:
    status, output = wk(server.url, "keys", "list", key=ADMIN_KEY + "\r\n")
    assert status == 0, output


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("127.0.0.1:8766", "is not a URL such as http://"),
        ("localhost:8766", "is not a URL such as http://"),
        ("http://[::1", "is not a usable URL"),
    ],
)
def test_a_bad_server_url_is_a_usage_error(url: str, fragment: str) -> None:
    status, output = wk(url, "keys", "list")
    assert status == 2 and fragment in output, output


class _NotWatchkeep(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the handler's protocol
        body = b'{"hello": "world"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[str]:
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _NotWatchkeep)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_server_that_is_not_watchkeep_is_named(other_server: str) -> None:
    status, output = wk(other_server, "users", "list")
    assert status == 1 and "is --server the address of `watchkeep serve`?" in output, output


def test_https_to_a_plain_server_says_so(server: RunningServer) -> None:
    status, output = wk(server.url.replace("http://", "https://"), "keys", "list")
    assert status == 1 and "use http:// in --server" in output, output


@pytest.mark.parametrize("interval", ["0", "-1", "nan", "inf"])
def test_tail_polls_at_most_ten_times_a_second(server: RunningServer, interval: str) -> None:
    status, output = wk(server.url, "tail", "app", "-f", "--interval-s", interval)
    assert status == 2 and "--interval-s" in output, output


@pytest.mark.parametrize(
    "args",
    [
        ("query", "fields @message", "-g", "app", "--since", "yesterday"),
        (
            "metrics",
            "get",
            "--namespace",
            "App",
            "--name",
            "m",
            "-s",
            "Sum",
            "--since",
            "yesterday",
        ),
    ],
)
def test_since_is_a_duration(server: RunningServer, args: tuple[str, ...]) -> None:
    status, output = wk(server.url, *args)
    assert status == 2, output
    assert "--since 'yesterday' is not a duration such as 15m" in output


def test_since_takes_the_same_durations_everywhere(
    server: RunningServer, client: httpx.Client
) -> None:
    client.post(
        "/api/v1/logs/events",
        params={"group": "app"},
        content=b"hello\n",
        headers={"Content-Type": "text/plain"},
    ).raise_for_status()
    for since in ("10m", "-10m"):
        status, output = wk(server.url, "tail", "app", "--since", since)
        assert status == 0 and "hello" in output, output
        status, output = wk(server.url, "query", "fields @message", "-g", "app", "--since", since)
        assert status == 0 and "hello" in output, output


def test_a_dimension_given_twice_is_a_usage_error(server: RunningServer) -> None:
    args = ("metrics", "get", "--namespace", "App", "--name", "m", "-s", "Sum", "--since", "1h")
    status, output = wk(server.url, *args, "-d", "host=a", "-d", "host=b")
    assert status == 2 and "'host' is given twice" in output, output
