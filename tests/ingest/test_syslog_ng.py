"""End to end with the real syslog-ng: README.md's ``http()`` destination ships syslog to a server.

syslog-ng (the Debian packages ``syslog-ng-core`` and ``syslog-ng-mod-http``) runs unprivileged
in the foreground with every file it writes in a temp dir. It receives RFC 5424 messages on a
``syslog()`` source and RFC 3164 messages on a ``network()`` source, both on free TCP ports, and
posts them in JSON array batches with the destination line copied from README.md. Skipped when
syslog-ng is not installed.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from store.scan import quote_identifier
from store.schema import FIELDS_MAP_COLUMN, SYSTEM_COLUMNS
from tests.conftest import ADMIN_KEY, RunningServer, all_events

README = Path(__file__).resolve().parents[2] / "README.md"
# The placeholders of README's syslog-ng line, replaced by the test server's URL and key.
README_URL = "http://127.0.0.1:8766/api/v1/logs/events?group=app&stream=syslog"
README_KEY = "WKIA…:wks_…"
GROUP, STREAM = "app", "syslog"
DEADLINE_S = 30.0

# Debian puts syslog-ng in /usr/sbin, which is not on an ordinary user's PATH.
SYSLOG_NG = shutil.which("syslog-ng") or shutil.which("syslog-ng", path="/usr/sbin:/sbin")


def readme_destination(url: str, key: str) -> str:
    """README's syslog-ng ``http(...)`` line, pointed at ``url`` with ``key``."""
    match = re.search(r"^\| syslog-ng \| `(http\(.*?\))`", README.read_text(), re.MULTILINE)
    assert match, "README.md has no '| syslog-ng | `http(...)` |' row in 'Shipping logs'"
    line = match.group(1)
    assert README_URL in line and README_KEY in line, f"README's placeholders changed: {line}"
    return line.replace(README_URL, url).replace(README_KEY, key)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rfc5424(i: int, text: str, *, bom: bool = False) -> bytes:
    """One RFC 5424 message with octet-counting framing (RFC 6587), as ``syslog()`` reads it."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    head = f'<134>1 {stamp} web-1 checkout {1000 + i} ID{i} [wk@32473 seq="{i}"] '
    msg = head.encode() + (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    return b"%d %s" % (len(msg), msg)


def rfc3164(i: int, text: str) -> bytes:
    """One BSD syslog line, newline-framed, as ``network()`` reads it."""
    stamp = time.strftime("%b %e %H:%M:%S")
    return f"<13>{stamp} db-1 postgres[{2000 + i}]: {text}\n".encode()


def messages() -> list[tuple[int, str]]:
    """(number, text) of the 50 messages: even ones go as RFC 5424, odd ones as RFC 3164."""
    texts = {i: f"wk-e2e {i:02d} order {i * 7} shipped in {i * 3} ms" for i in range(50)}
    texts[6] = "wk-e2e 06 héllo wörld ✓ 日本語 🚀 ünïcödé"  # RFC 5424 with its BOM
    texts[7] = "wk-e2e 07 Grüße aus Köln — naïve café"  # RFC 3164, UTF-8 without a BOM
    texts[10] = r'wk-e2e 10 say "hi" to C:\new\table and \\server\share, {"k": "v\"q"} \u00e9'
    texts[11] = 'wk-e2e 11 quoted "x" back\\slash\ttab \\"both\\" end'
    return sorted(texts.items())


class SyslogNg:
    """A syslog-ng process in the foreground, all its files (and its log) under ``work``."""

    def __init__(self, binary: str, work: Path, config: str) -> None:
        self.conf = work / "syslog-ng.conf"
        self.conf.write_text(config)
        self.log = work / "syslog-ng.log"
        args = [
            binary,
            "--foreground",
            "--stderr",
            "--no-caps",
            f"--cfgfile={self.conf}",
            f"--persist-file={work / 'syslog-ng.persist'}",
            f"--pidfile={work / 'syslog-ng.pid'}",
            f"--control={work / 'syslog-ng.ctl'}",
        ]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_listening(self, *ports: int) -> None:
        deadline = time.monotonic() + DEADLINE_S
        pending = list(ports)
        while pending:
            assert self.proc.poll() is None, f"syslog-ng exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"syslog-ng is not listening:\n{self.output()}"
            try:
                socket.create_connection(("127.0.0.1", pending[0]), timeout=1).close()
                pending.pop(0)
            except OSError:
                time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM, then wait for it to flush and exit; the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def syslog_ng() -> str:
    if SYSLOG_NG is None:
        pytest.skip(
            "syslog-ng is not installed "
            "(apt-get install --no-install-recommends syslog-ng-core syslog-ng-mod-http)"
        )
    version = subprocess.run([SYSLOG_NG, "--version"], capture_output=True, text=True).stdout
    modules = re.search(r"^Available-Modules: (.*)$", version, re.MULTILINE)
    if modules is None or "http" not in modules.group(1).split(","):
        pytest.skip(
            "syslog-ng's http() module is not installed (apt-get install syslog-ng-mod-http)"
        )
    return SYSLOG_NG


def events_so_far(client: httpx.Client) -> list[dict[str, object]]:
    """The group's events; none while the group does not exist yet (no batch has arrived)."""
    if client.get(f"/api/v1/logs/groups/{GROUP}").status_code == 404:
        return []
    return all_events(client, GROUP)


def wait_for(count: int, read: Callable[[], list[dict[str, object]]], sng: SyslogNg) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while len(got := read()) < count:
        assert sng.proc.poll() is None, f"syslog-ng exited:\n{sng.output()}"
        assert time.monotonic() < deadline, (
            f"only {len(got)} of {count} events arrived in {DEADLINE_S} s; "
            f"syslog-ng said:\n{sng.output()}"
        )
        time.sleep(0.1)


# The fields README's format-json template gives besides message and timestamp, by dot path.
SAFE_FIELDS = ("HOST", "PROGRAM", "PID", "MSGID", "FACILITY", "PRIORITY", "_SDATA.wk@32473.seq")


def number(text: str) -> int:
    return int(text.split()[1])


def field_rows(server: RunningServer) -> dict[int, dict[str, object]]:
    columns = ", ".join(quote_identifier(name) for name in SAFE_FIELDS)
    sql = f"SELECT message, {columns} FROM logs"
    table = server.store.query_logs([GROUP], 0, 10**15, sql, [])
    rows = table.to_pylist()
    assert len(rows) == len(messages())
    return {number(str(row.pop("message"))): row for row in rows}


def test_syslog_ng_http_destination_from_readme_delivers_every_message_once(
    syslog_ng: str,
    server: RunningServer,
    client: httpx.Client,
    tmp_path: Path,
) -> None:
    port_5424, port_3164 = free_port(), free_port()
    destination = readme_destination(
        f"{server.url}/api/v1/logs/events?group={GROUP}&stream={STREAM}", ADMIN_KEY
    )
    config = f"""@version: 3.38
options {{ keep-hostname(yes); }};
source s_rfc5424 {{ syslog(ip("127.0.0.1") port({port_5424}) transport("tcp")); }};
source s_rfc3164 {{ network(ip("127.0.0.1") port({port_3164}) transport("tcp")); }};
destination d_watchkeep {{ {destination}; }};
log {{ source(s_rfc5424); source(s_rfc3164); destination(d_watchkeep); }};
"""
    sent = messages()
    sng = SyslogNg(syslog_ng, tmp_path, config)
    try:
        sng.wait_listening(port_5424, port_3164)
        with (
            socket.create_connection(("127.0.0.1", port_5424), timeout=10) as new,
            socket.create_connection(("127.0.0.1", port_3164), timeout=10) as old,
        ):
            for i, text in sent:
                if i % 2 == 0:
                    new.sendall(rfc5424(i, text, bom=i == 6))
                else:
                    old.sendall(rfc3164(i, text))
        wait_for(len(sent), lambda: events_so_far(client), sng)
    finally:
        status = sng.stop()
    assert status == 0, f"syslog-ng exited with {status}:\n{sng.output()}"
    log = sng.output()
    assert "error" not in log.lower(), log

    # Read after syslog-ng has stopped (and flushed): a late duplicate would show here.
    events = all_events(client, GROUP)
    assert {e["log_stream"] for e in events} == {STREAM}
    # README's template sends the syslog MSG as "message" and ISODATE as "timestamp".
    assert Counter(str(e["message"]) for e in events) == Counter(text for _, text in sent)
    now_ms = time.time() * 1000
    assert all(abs(int(str(e["timestamp"])) - now_ms) < 3_600_000 for e in events)

    # The other fields were discovered at ingest and are columns of their own, in the
    # memtable and in Parquet alike.
    rows = field_rows(server)
    for i, _ in sent:
        row = rows[i]
        if i % 2 == 0:
            assert (row["HOST"], row["PROGRAM"], row["PID"]) == ("web-1", "checkout", str(1000 + i))
            assert (row["MSGID"], row["FACILITY"], row["PRIORITY"]) == (f"ID{i}", "local0", "info")
            assert row["_SDATA.wk@32473.seq"] == str(i)
        else:
            assert (row["HOST"], row["PROGRAM"], row["PID"]) == ("db-1", "postgres", str(2000 + i))
            assert (row["FACILITY"], row["PRIORITY"]) == ("user", "notice")
    assert server.store.flush(force=True) == len(sent)
    assert field_rows(server) == rows


# One object exactly as syslog-ng 3.38's $(format-json --scope rfc5424) writes it.
SYSLOG_NG_OBJECT = {
    "PROGRAM": "checkout",
    "PRIORITY": "info",
    "PID": "1000",
    "MSGID": "ID0",
    "MESSAGE": "order 0 shipped",
    "HOST": "web-1",
    "FACILITY": "local0",
    "DATE": "Nov 27 05:25:52",
}


def post_syslog_ng_object(client: httpx.Client) -> None:
    response = client.post(
        "/api/v1/logs/events",
        params={"group": GROUP, "stream": STREAM},
        content=json.dumps([SYSLOG_NG_OBJECT]),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "rejected": []}


def select_all(server: RunningServer) -> list[dict[str, Any]]:
    return server.store.query_logs([GROUP], 0, 10**15, "SELECT * FROM logs", []).to_pylist()


def test_a_field_named_like_a_system_column_in_other_case_keeps_its_name(
    server: RunningServer, client: httpx.Client
) -> None:
    """DuckDB names are case-insensitive: syslog-ng's MESSAGE must not be promoted beside the
    system column ``message`` (DuckDB would rename it MESSAGE_1); it goes to the map."""
    post_syslog_ng_object(client)
    [row] = select_all(server)
    allowed = {*SYSTEM_COLUMNS, FIELDS_MAP_COLUMN, *SYSLOG_NG_OBJECT}
    assert set(row) <= allowed, f"unexpected columns: {sorted(set(row) - allowed)}"
    stored = row.get("MESSAGE", dict(row[FIELDS_MAP_COLUMN]).get("MESSAGE"))
    assert stored == SYSLOG_NG_OBJECT["MESSAGE"]


def test_flushing_does_not_change_a_field_named_date(
    server: RunningServer, client: httpx.Client
) -> None:
    """Segment paths hold date=/hour= folders; they must not become columns that replace a
    field named DATE once the events are flushed."""
    post_syslog_ng_object(client)
    before = select_all(server)
    assert before[0]["DATE"] == SYSLOG_NG_OBJECT["DATE"]
    assert server.store.flush(force=True) == 1
    assert select_all(server) == before
