"""Audit reports against a real server: records made through the real API (users, keys,
policies, an explicit and an implicit denial, failed authentication with a bad key, deletions,
console sign-ins, root at work), then each template's rows, the three formats, the signature
headers and sidecar, the CLI verbs, and the HTML once in headless Chromium."""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from typer.testing import CliRunner

from audit.report_routes import router as report_router
from audit.reports import TEMPLATES, check_report, sha256_hex
from audit.reports.sidecar import SIDECAR_HEADER
from audit.signing import load_private_key, public_key_pem
from server.app import DEFAULT_ROUTERS
from server.cli_report import register
from tests.conftest import ADMIN_KEY, RunningServer, make_settings

pytestmark = pytest.mark.timeout(240)

# The lead adds the router to DEFAULT_ROUTERS; until then the tests add it themselves.
ROUTERS = DEFAULT_ROUTERS if report_router in DEFAULT_ROUTERS else (*DEFAULT_ROUTERS, report_router)
ACCT = "000000000000"
BAD_KEY_ID = "WKIA" + "Q" * 16
BAD_KEY = f"{BAD_KEY_ID}:wks_{'A' * 40}"
XSS_AGENT = "<script>window.wkPwned=1</script>"
ALICE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Logs", "Effect": "Allow", "Action": "logs:*", "Resource": "*"},
        {
            "Sid": "NoProdDeletes",
            "Effect": "Deny",
            "Action": "logs:DeleteLogGroup",
            "Resource": f"arn:watchkeep:logs:local:{ACCT}:log-group:prod-*",
        },
    ],
}
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclass
class Seeded:
    server: RunningServer
    alice_key: str
    bob_key: str
    temp_key_id: str
    mid: str  # an RFC 3339 time between the seed and alice's last call

    @property
    def alice_key_id(self) -> str:
        return self.alice_key.split(":")[0]

    @property
    def bob_key_id(self) -> str:
        return self.bob_key.split(":")[0]

    def client(self, key: str | None = ADMIN_KEY, **headers: str) -> httpx.Client:
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=60)

    def public_key(self) -> Ed25519PublicKey:
        return load_private_key(self.server.settings.signing_key_file).public_key()


def ok(response: httpx.Response, status: int = 200) -> httpx.Response:
    assert response.status_code == status, response.text
    return response


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    settings = make_settings(tmp_path_factory.mktemp("reports") / "data", audit_lookup_rate=0)
    server = RunningServer(settings, routers=ROUTERS).start()
    try:
        yield _seed(server)
    finally:
        server.stop()


def _seed(server: RunningServer) -> Seeded:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    ) as root:
        for user in ("alice", "bob"):
            ok(root.put(f"/api/v1/iam/users/{user}"), 201)
        ok(root.put("/api/v1/iam/policies/alice-logs", json=ALICE_POLICY), 201)
        ok(root.put("/api/v1/iam/users/alice/policies/alice-logs"), 204)
        ok(root.put("/api/v1/iam/policies/admins", json=ADMIN_POLICY), 201)
        ok(root.put("/api/v1/iam/users/bob/policies/admins"), 204)
        alice_key = ok(root.post("/api/v1/iam/users/alice/keys"), 201).json()["key"]
        bob_key = ok(root.post("/api/v1/iam/users/bob/keys"), 201).json()["key"]
        temp = ok(root.post("/api/v1/iam/users/alice/keys"), 201).json()["access_key_id"]
        ok(root.patch(f"/api/v1/iam/keys/{temp}", json={"status": "Inactive"}))
        ok(root.delete(f"/api/v1/iam/keys/{temp}"), 204)
        for group in ("prod-api", "scratch"):
            ok(root.put(f"/api/v1/logs/groups/{group}"), 201)
    seeded = Seeded(server, alice_key, bob_key, temp, "")
    with seeded.client(alice_key) as alice:
        ok(alice.delete("/api/v1/logs/groups/prod-api"), 403)  # explicit deny
        ok(alice.get("/api/v1/iam/users"), 403)  # implicit deny
    with seeded.client(bob_key, **{"User-Agent": XSS_AGENT}) as bob:
        ok(bob.delete("/api/v1/logs/groups/scratch"))
        ok(bob.post("/api/v1/signin"))
        ok(bob.get("/api/v1/audit/events", params={"max_results": 5}))
    with seeded.client(BAD_KEY, **{"User-Agent": "bruteforce/1.0"}) as bad:
        for _ in range(3):
            ok(bad.get("/api/v1/logs/groups"), 401)
    with seeded.client(None) as anon:
        ok(anon.post("/api/v1/signin"), 401)
    time.sleep(1.1)  # eventTime has whole seconds
    seeded.mid = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(1.1)
    with seeded.client(alice_key) as alice:
        ok(alice.get("/api/v1/logs/groups"))
    return seeded


def report(seeded: Seeded, template: str, **params: Any) -> dict[str, Any]:
    with seeded.client() as client:
        response = ok(client.get("/api/v1/audit/report", params={"template": template, **params}))
    body: dict[str, Any] = response.json()
    return body


def rows(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    for section in body["sections"]:
        if section["key"] == key:
            return list(section["rows"])
    raise AssertionError(f"no section {key}: {[s['key'] for s in body['sections']]}")


# ---- the templates' content ------------------------------------------------------------------


def test_template_list_names_q1_to_q12(seeded: Seeded) -> None:
    with seeded.client() as client:
        listed = ok(client.get("/api/v1/audit/report/templates")).json()
    assert [t["number"] for t in listed["templates"]] == [f"Q{i}" for i in range(1, 13)]
    assert [t["name"] for t in listed["templates"]] == list(TEMPLATES)
    key_activity = next(t for t in listed["templates"] if t["name"] == "access-key-activity")
    assert key_activity["parameters"][0]["required"] is True
    assert listed["formats"] == ["json", "csv", "html"]


def test_who_deleted_names_the_deleter(seeded: Seeded) -> None:
    [deletion] = rows(report(seeded, "who-deleted", resource="scratch"), "deletions")
    assert deletion["event_name"] == "DeleteLogGroup" and deletion["actor"] == "bob"
    assert deletion["principal_arn"] == f"arn:watchkeep:iam::{ACCT}:user/bob"
    assert deletion["outcome"] == "Success" and deletion["source_ip"] == "127.0.0.1"
    assert deletion["resources"] == [f"arn:watchkeep:logs:local:{ACCT}:log-group:scratch"]
    [attempt] = rows(report(seeded, "who-deleted", resource="prod-api"), "deletions")
    assert attempt["actor"] == "alice" and attempt["outcome"] == "AccessDeniedException"


def test_access_denied_counts_each_denial_with_action_and_decision(seeded: Seeded) -> None:
    body = report(seeded, "access-denied")
    counted = {
        (r["actor"], r["action"], r["decision"]): r["denials"]
        for r in rows(body, "by-principal-and-action")
    }
    assert counted[("alice", "logs:DeleteLogGroup", "ExplicitDeny")] == 1
    assert counted[("alice", "iam:ListUsers", "ImplicitDeny")] == 1
    explicit = next(r for r in rows(body, "denials") if r["decision"] == "ExplicitDeny")
    assert (explicit["matched_policy"], explicit["matched_sid"]) == ("alice-logs", "NoProdDeletes")
    assert explicit["access_key_id"] == seeded.alice_key_id


def test_auth_failures_by_source_show_the_bad_key_and_ip(seeded: Seeded) -> None:
    body = report(seeded, "auth-failures-by-source", threshold_per_minute=2)
    by_key = {r["presented_key_id"]: r for r in rows(body, "by-source")}
    bad = by_key[BAD_KEY_ID]
    assert (bad["source_ip"], bad["failures"]) == ("127.0.0.1", 3)
    assert (
        bad["error_codes"] == "UnrecognizedClientException"
        and "bruteforce/1.0" in bad["user_agents"]
    )
    assert "(none or malformed)" in by_key  # the console sign-in without a key
    assert any(
        b["failures"] >= 3 and b["flag"] == "possible brute force" for b in rows(body, "bursts")
    )
    assert "wks_" not in json.dumps(body)  # the secret presented is never recorded


def test_credential_lifecycle_shows_keys_created_deactivated_deleted(seeded: Seeded) -> None:
    body = report(seeded, "credential-lifecycle", key_age_days=0)
    changes = rows(body, "changes")
    created = {
        (r["user_name"], r["access_key_id"])
        for r in changes
        if r["event_name"] == "CreateAccessKey"
    }
    assert ("alice", seeded.alice_key_id) in created and ("bob", seeded.bob_key_id) in created
    [deactivated] = [r for r in changes if r["event_name"] == "UpdateAccessKey"]
    assert (deactivated["access_key_id"], deactivated["user_name"], deactivated["new_status"]) == (
        seeded.temp_key_id,
        "alice",
        "Inactive",
    )
    [deleted] = [r for r in changes if r["event_name"] == "DeleteAccessKey"]
    assert deleted["actor"] == "root" and deleted["user_name"] == "alice"
    old = {r["access_key_id"] for r in rows(body, "old-active-keys")}
    assert {seeded.alice_key_id, seeded.bob_key_id} <= old and seeded.temp_key_id not in old
    assert any("login profiles" in note for note in body["notes"])


def test_policy_changes_show_the_document(seeded: Seeded) -> None:
    changes = rows(report(seeded, "policy-changes"), "changes")
    created = {r["policy"]: r for r in changes if r["event_name"] == "CreatePolicy"}
    assert json.loads(created["alice-logs"]["document"]) == ALICE_POLICY
    assert created["alice-logs"]["change"] == "created" and created["alice-logs"]["actor"] == "root"
    assert created["admins"]["flag"] == "admin policy" and created["alice-logs"]["flag"] is None
    attached = {r["target"] for r in changes if r["event_name"] == "AttachUserPolicy"}
    assert attached == {"user/alice", "user/bob"}


def test_root_and_admin_activity_lists_root_calls_and_admins(seeded: Seeded) -> None:
    body = report(seeded, "root-and-admin-activity")
    admins = {r["user_name"]: r["why"] for r in rows(body, "admin-principals")}
    assert set(admins) == {"root", "bob"} and "admins" in admins["bob"]
    calls = rows(body, "calls")
    root_calls = {r["event_name"] for r in calls if r["user_type"] == "Root"}
    assert {
        "CreateUser",
        "CreatePolicy",
        "CreateAccessKey",
        "DeleteAccessKey",
        "CreateLogGroup",
    } <= root_calls
    assert any(r["actor"] == "bob" and r["event_name"] == "DeleteLogGroup" for r in calls)
    assert not any(r["actor"] == "alice" for r in calls)


def test_top_error_principals(seeded: Seeded) -> None:
    body = report(seeded, "top-error-principals", top=5)
    by_principal = {r["principal"]: r for r in rows(body, "by-principal")}
    alice = by_principal[f"arn:watchkeep:iam::{ACCT}:user/alice"]
    assert alice["errors"] == 2 and alice["error_codes"] == "AccessDeniedException"
    assert by_principal[f"unknown (key {BAD_KEY_ID})"]["errors"] == 3
    pairs = rows(body, "by-principal-and-error")
    assert any(p["sample_message"].startswith("User: arn:watchkeep:iam::") for p in pairs)


def test_console_logins_put_failures_first_and_flag_missing_mfa(seeded: Seeded) -> None:
    sign_ins = rows(report(seeded, "console-logins"), "sign-ins")
    assert [r["outcome"] for r in sign_ins] == ["Failure", "Success"]
    assert sign_ins[1]["user_name"] == "bob" and sign_ins[1]["flag"] == "sign-in without MFA"
    assert sign_ins[0]["error_code"] == "MissingAuthenticationTokenException"


def test_changes_list_successful_writes_only(seeded: Seeded) -> None:
    body = report(seeded, "changes-last-24h")
    operations = {(r["event_source"], r["event_name"]) for r in rows(body, "by-operation")}
    assert ("logs.watchkeep", "CreateLogGroup") in operations and (
        "iam.watchkeep",
        "CreateUser",
    ) in operations
    changes = rows(body, "changes")
    deletes = [r for r in changes if r["event_name"] == "DeleteLogGroup"]
    assert [d["actor"] for d in deletes] == ["bob"]  # alice's denied attempt is no change


def test_audit_trail_access_shows_readers_and_service_events(seeded: Seeded) -> None:
    report(seeded, "changes-last-24h")  # a report is itself an access to the trail
    body = report(seeded, "audit-trail-access-and-config")
    readers = {(r["actor"], r["event_name"]) for r in rows(body, "reads-by-principal")}
    assert ("bob", "LookupEvents") in readers and ("root", "GenerateReport") in readers
    calls = [r for r in rows(body, "trail-calls") if r["event_name"] == "GenerateReport"]
    assert any(json.loads(c["request_parameters"])["template"] == "changes-last-24h" for c in calls)
    assert "ServerStarted" in {r["event_name"] for r in rows(body, "service-events")}


def test_access_key_activity_follows_one_key(seeded: Seeded) -> None:
    body = report(seeded, "access-key-activity", access_key=seeded.bob_key_id)
    [summary] = rows(body, "summary")
    assert summary["calls"] == 3 and summary["source_ips"] == 1
    assert summary["principals"] == f"arn:watchkeep:iam::{ACCT}:user/bob"
    assert [r["user_agent"] for r in rows(body, "user-agents")] == [XSS_AGENT]
    assert [r["event_name"] for r in rows(body, "timeline")] == [
        "DeleteLogGroup",
        "ConsoleLogin",
        "LookupEvents",
    ]
    assert [r["event_name"] for r in rows(body, "key-changes")] == ["CreateAccessKey"]


def test_new_source_ips_know_the_baseline(seeded: Seeded) -> None:
    fresh = {
        (r["actor"], r["source_ip"]) for r in rows(report(seeded, "new-source-ips"), "new-pairs")
    }
    assert ("alice", "127.0.0.1") in fresh  # nothing before the last 24 h
    later = rows(report(seeded, "new-source-ips", start=seeded.mid), "new-pairs")
    assert not any(r["actor"] == "alice" for r in later)  # alice used 127.0.0.1 in the baseline


# ---- formats, signature, recording ------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "csv", "html"])
def test_every_format_is_signed_in_the_headers(seeded: Seeded, fmt: str) -> None:
    with seeded.client() as client:
        response = ok(
            client.get("/api/v1/audit/report", params={"template": "access-denied", "format": fmt})
        )
    data = response.content
    assert response.headers["x-watchkeep-report-sha256"] == sha256_hex(data)
    sidecar = json.loads(base64.urlsafe_b64decode(response.headers[SIDECAR_HEADER]))
    assert sidecar["signature"] == response.headers["x-watchkeep-report-signature"]
    assert (sidecar["template"], sidecar["reportFormat"]) == ("access-denied", fmt)
    assert check_report(data, sidecar, seeded.public_key()) == []
    assert response.headers["content-type"].startswith(
        {"json": "application/json", "csv": "text/csv", "html": "text/html"}[fmt]
    )
    flipped = bytearray(data)
    flipped[-10] ^= 0x20
    assert check_report(bytes(flipped), sidecar, seeded.public_key())


def test_json_report_holds_every_part_of_the_checklist(seeded: Seeded) -> None:
    body = report(seeded, "who-deleted")
    scope = body["scope"]
    assert (
        scope["trailName"] == "default"
        and scope["accountId"] == ACCT
        and scope["region"] == "local"
    )
    assert scope["generator"].startswith("watchkeep ") and scope["generatedBy"]["type"] == "Root"
    assert {"start", "end", "generatedAt", "trailId"} <= set(scope)
    integrity = body["integrity"]
    assert integrity["result"] == "valid" and integrity["tool"] == "watchkeep audit verify"
    assert integrity["publicKeyFingerprints"] == [
        json.loads(base64.urlsafe_b64decode(_headers(seeded)[SIDECAR_HEADER]))[
            "publicKeyFingerprint"
        ]
    ]
    assert integrity["summary"]["digestsValid"] >= 1 and integrity["digests"]["first"].startswith(
        "digests/"
    )
    coverage = body["coverage"]
    assert coverage["records"] > 20 and coverage["sequenceContiguous"] is True
    assert {c["category"] for c in coverage["byCategory"]} == {"Management"}
    assert coverage["gaps"] == []
    assert [s["key"] for s in body["sections"]] == ["by-actor", "deletions"]
    assert body["reviewer"]["status"] == "not reviewed"


def _headers(seeded: Seeded) -> httpx.Headers:
    with seeded.client() as client:
        return ok(client.get("/api/v1/audit/report", params={"template": "console-logins"})).headers


def test_csv_report_is_blocks_of_tables(seeded: Seeded) -> None:
    with seeded.client() as client:
        data = ok(
            client.get("/api/v1/audit/report", params={"template": "who-deleted", "format": "csv"})
        ).content
    blocks: dict[str, list[list[str]]] = {}
    for chunk in data.decode().split("\r\n\r\n"):
        title, *table = list(csv.reader(io.StringIO(chunk)))
        assert title[0] == "section"
        blocks[title[1]] = table
        assert all(len(row) == len(table[0]) for row in table), title
    assert list(blocks)[:5] == ["report", "scope", "integrity", "integrity-findings", "coverage"]
    assert list(blocks)[-2:] == ["notes", "reviewer"]
    header, *deletions = blocks["deletions"]
    found = {(r[header.index("actor")], r[header.index("event_name")]) for r in deletions}
    assert found == {
        ("alice", "DeleteLogGroup"),
        ("bob", "DeleteLogGroup"),
        ("root", "DeleteAccessKey"),
    }
    assert dict(blocks["integrity"][1:])["result"] == "valid"


BAD_REQUESTS = [
    ("no-template", {}, "InvalidParameterException", "template is required"),
    (
        "unknown-template",
        {"template": "who-delted"},
        "InvalidParameterException",
        'Did you mean "who-deleted"',
    ),
    (
        "bad-format",
        {"template": "who-deleted", "format": "pdf"},
        "InvalidParameterException",
        "Unknown report format",
    ),
    (
        "start-after-end",
        {"template": "who-deleted", "start": "-1h", "end": "-2h"},
        "InvalidTimeRangeException",
        "is after end",
    ),
    (
        "bad-time",
        {"template": "who-deleted", "start": "soon"},
        "InvalidTimeRangeException",
        "start:",
    ),
    (
        "missing-param",
        {"template": "access-key-activity"},
        "InvalidParameterException",
        "needs access_key",
    ),
    (
        "unknown-param",
        {"template": "who-deleted", "colour": "red"},
        "InvalidParameterException",
        "takes no parameter colour",
    ),
]


@pytest.mark.parametrize(
    ("params", "code", "message"), [b[1:] for b in BAD_REQUESTS], ids=[b[0] for b in BAD_REQUESTS]
)
def test_bad_requests_answer_one_error_shape(
    seeded: Seeded, params: dict[str, str], code: str, message: str
) -> None:
    with seeded.client() as client:
        response = client.get("/api/v1/audit/report", params=params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code and message in error["message"]


def test_generating_needs_permission_and_is_recorded(seeded: Seeded) -> None:
    with seeded.client(seeded.alice_key) as alice:
        denied = alice.get("/api/v1/audit/report", params={"template": "who-deleted"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "AccessDeniedException"
    with seeded.client() as client:
        found = ok(
            client.get(
                "/api/v1/audit/events",
                params={"lookup_key": "EventName", "lookup_value": "GenerateReport"},
            )
        )
    records = [json.loads(e["cloudtrail_event"]) for e in found.json()["events"]]
    refused = [r for r in records if r.get("errorCode") == "AccessDeniedException"]
    assert refused and refused[0]["userIdentity"]["userName"] == "alice"
    assert (
        refused[0]["additionalEventData"]["watchkeep"]["authorization"]["action"]
        == "cloudtrail:GenerateReport"
    )
    assert all(
        r["readOnly"] is True and r["eventSource"] == "cloudtrail.watchkeep" for r in records
    )


# ---- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_cli_writes_report_and_sidecar_that_verify(
    seeded: Seeded, cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    key_file = tmp_path / "audit.pub"
    key_file.write_text(public_key_pem(seeded.public_key()))
    out = tmp_path / "deleted.csv"
    result = runner.invoke(
        cli,
        [
            "report",
            "--template",
            "who-deleted",
            "--resource",
            "scratch",
            "--format",
            "csv",
            "--from",
            "-1h",
            "--out",
            str(out),
            "--server",
            seeded.server.url,
            "--key",
            ADMIN_KEY,
        ],
    )
    assert result.exit_code == 0, result.output
    sidecar = json.loads((tmp_path / "deleted.csv.sig.json").read_text())
    assert (
        sidecar["sha256"] == sha256_hex(out.read_bytes()) and sidecar["template"] == "who-deleted"
    )
    verified = runner.invoke(cli, ["report-verify", str(out), "--public-key", str(key_file)])
    assert verified.exit_code == 0 and verified.output.startswith("valid: "), verified.output

    data = bytearray(out.read_bytes())
    data[100] ^= 0x01
    out.write_bytes(bytes(data))
    tampered = runner.invoke(cli, ["report-verify", str(out), "--public-key", str(key_file)])
    assert tampered.exit_code == 1 and "INVALID: the report's SHA-256" in tampered.output
    missing = runner.invoke(
        cli, ["report-verify", str(out), "--public-key", str(tmp_path / "nope.pem")]
    )
    assert missing.exit_code == 2

    monkeypatch.chdir(tmp_path)  # no --out: a name of its own, in the current directory
    named = runner.invoke(
        cli,
        [
            "report",
            "-t",
            "console-logins",
            "--format",
            "json",
            "--server",
            seeded.server.url,
            "--key",
            ADMIN_KEY,
        ],
    )
    assert named.exit_code == 0, named.output
    [written] = [
        p for p in tmp_path.glob("watchkeep-report-console-logins-*") if p.suffixes == [".json"]
    ]
    assert (tmp_path / f"{written.name}.sig.json").exists()
    refused = runner.invoke(
        cli,
        ["report", "-t", "access-key-activity", "--server", seeded.server.url, "--key", ADMIN_KEY],
    )
    assert refused.exit_code == 1 and "needs access_key" in refused.output


# ---- the HTML in a real browser --------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from tests.web.conftest import CHROMIUM, CHROMIUM_FLAGS

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is missing"
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def test_html_report_renders_sections_and_charts_in_chromium(
    seeded: Seeded, chromium: Any, tmp_path: Path
) -> None:
    from tests.web.conftest import SCREENSHOTS

    with seeded.client() as client:
        response = ok(
            client.get(
                "/api/v1/audit/report",
                params={
                    "template": "access-key-activity",
                    "format": "html",
                    "access_key": seeded.bob_key_id,
                },
            )
        )
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page_file = tmp_path / "report.html"
    page_file.write_bytes(response.content)  # opened as a user opens the downloaded file
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_file.as_uri())
    try:
        ids = page.eval_on_selector_all("section[id]", "nodes => nodes.map(n => n.id)")
        assert ids[:3] == ["scope", "integrity", "coverage"] and ids[-2:] == ["notes", "reviewer"]
        assert [i for i in ids if i.startswith("section-")] == [
            f"section-{s.key}" for s in TEMPLATES["access-key-activity"].sections
        ]
        assert page.inner_text("#integrity .badge, header .badge") == "valid"
        widths = page.eval_on_selector_all(
            "#section-source-ips svg.chart rect",
            "rects => rects.map(r => r.getBoundingClientRect().width)",
        )
        assert len(widths) == 1 and widths[0] > 100  # one source IP, drawn as a bar
        columns = page.eval_on_selector_all(
            "#section-over-time svg.chart rect.column", "rects => rects.length"
        )
        assert columns >= 1
        assert (
            page.evaluate("document.scripts.length") == 0
            and page.evaluate("window.wkPwned") is None
        )
        assert XSS_AGENT in page.inner_text("#section-user-agents")  # shown as text, not run
        assert requests == [page_file.as_uri()] and errors == []  # self-contained
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        shutil.copy(shot, SCREENSHOTS / "report.png")
        page.emulate_media(media="print")
        assert page.pdf(format="A4", landscape=True).startswith(b"%PDF")  # printable
    finally:
        context.close()
