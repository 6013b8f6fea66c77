"""The console's routes over HTTP (no browser): the page and its assets are served without a
key and with the headers that keep a key-holding page safe, ConsoleLogin is authenticated and
recorded as a ``signin.watchkeep`` event, and the editor's vocabulary matches the parser's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from query.signatures import OUT_OF_SCOPE, SIGNATURES
from query.syntax_errors import COMMANDS
from tests.conftest import ADMIN_KEY, RunningServer
from web import is_console_path

STATIC = Path(__file__).parents[2] / "web" / "static"


@pytest.mark.parametrize(
    ("path", "exempt"),
    [
        ("/", True),
        ("/static/js/app.js", True),
        ("/static/vendor/uplot/uPlot.esm.js", True),
        ("/static/../server/app.py", False),
        ("/api/v1/signin", False),
        ("/api/v1/logs/groups", False),
        ("/index.html", False),
        ("/staticx", False),
    ],
    ids=lambda value: str(value),
)
def test_console_paths(path: str, exempt: bool) -> None:
    assert is_console_path(path) is exempt


def test_page_and_assets_need_no_key(console_server: RunningServer) -> None:
    with httpx.Client(base_url=console_server.url, timeout=30) as anon:
        page = anon.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/static/js/app.js">' in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"

        script = anon.get("/static/js/app.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        assert script.headers["x-content-type-options"] == "nosniff"
        again = anon.get("/static/js/app.js", headers={"If-None-Match": script.headers["etag"]})
        assert again.status_code == 304
        assert anon.head("/static/css/console.css").status_code == 200
        assert anon.get("/static/js/nothing-here.js").status_code == 404


def test_every_asset_the_page_loads_exists() -> None:
    """Each ES module import and each file index.html names is on disk (no build step)."""
    index = (STATIC / "index.html").read_text(encoding="utf-8")
    wanted = {STATIC / m for m in re.findall(r'(?:src|href)="/static/([^"]+)"', index)}
    for module in (STATIC / "js").glob("*.js"):
        for target in re.findall(r'from "(\.[^"]+)"', module.read_text(encoding="utf-8")):
            wanted.add((module.parent / target).resolve())
    missing = sorted(str(p) for p in wanted if not p.is_file())
    assert not missing


def test_console_login_answers_who_and_is_recorded(console_server: RunningServer) -> None:
    with httpx.Client(base_url=console_server.url, timeout=30) as anon:
        refused = anon.post("/api/v1/signin")
        assert refused.status_code == 401
        signed = anon.post("/api/v1/signin", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert signed.status_code == 200, signed.text
        who = signed.json()
        assert who["console_login"] == "Success"
        assert who["type"] == "Root" and who["user_name"] == "root"
        assert who["access_key_id"] == ADMIN_KEY.split(":")[0]
        assert "wks_" not in signed.text

        lookup = anon.get(
            "/api/v1/audit/events",
            params={"lookup_key": "EventSource", "lookup_value": "signin.watchkeep"},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
    records = [json.loads(e["cloudtrail_event"]) for e in lookup.json()["events"]]
    by_outcome = {r.get("errorCode"): r for r in records}
    assert by_outcome[None]["eventName"] == "ConsoleLogin"
    assert by_outcome[None]["userIdentity"]["type"] == "Root"
    assert by_outcome[None]["readOnly"] is False
    assert by_outcome["MissingAuthenticationTokenException"]["eventName"] == "ConsoleLogin"
    for record in records:  # sign-in records, successful or not (spec audit §2.4)
        assert record["eventType"] == "AwsConsoleSignIn" and "apiVersion" not in record
        assert record["additionalEventData"]["MFAUsed"] == "No"


def _js_list(name: str) -> list[str]:
    source = (STATIC / "js" / "lql.js").read_text(encoding="utf-8")
    body = re.search(rf"export const {name} = \[(.*?)\];", source, re.S)
    assert body is not None, name
    return re.findall(r'"([^"]+)"', body.group(1))


def test_editor_vocabulary_matches_the_parser() -> None:
    """The highlighter's words (web/static/js/lql.js) are the language's (query/)."""
    functions = {f.lower() for f in _js_list("FUNCTIONS")}
    aggregates = {f.lower() for f in _js_list("AGGREGATES")}
    assert functions | aggregates == set(SIGNATURES) - set(OUT_OF_SCOPE)
    assert aggregates == {name for name, s in SIGNATURES.items() if s.aggregate}
    assert _js_list("COMMANDS") == list(COMMANDS)
    grammar = (Path(__file__).parents[2] / "query" / "grammar.lark").read_text(encoding="utf-8")
    operator_words = re.search(r"\(\?i:([a-z|]+)\)", grammar)
    assert operator_words is not None
    assert set(_js_list("KEYWORDS")) | set(_js_list("BOOLEANS")) == set(
        operator_words.group(1).split("|")
    )
