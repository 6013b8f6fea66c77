"""Audit reports on a real trail (records appended to a real ``AuditTrail`` in a temp dir, signed
by a real ``Digester``), and the pure parts as tables: parameters, SQL literals, the admin
test, charts, the CSV and HTML renderings, and the detached signature."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.digests import Digester
from audit.record import Account
from audit.reports import (
    TEMPLATES,
    IamSnapshot,
    Report,
    ReportSource,
    ReportSpec,
    build_report,
    check_report,
    parse_params,
    pick_format,
    pick_template,
    render,
    resolve_range,
    sign_report,
)
from audit.reports.admins import admin_set, grants_admin
from audit.reports.charts import bar_chart, column_chart
from audit.reports.sidecar import string_to_sign
from audit.reports.sql import sql_list, sql_relation, sql_string
from audit.trail import AuditTrail, TrailConfig
from core.errors import BadRequest

ACCOUNT = Account("local", "000000000000")
ACCT = ACCOUNT.account_id
NOW = datetime.now(UTC).replace(microsecond=0)
ALICE = f"arn:watchkeep:iam::{ACCT}:user/alice"
ROOT = f"arn:watchkeep:iam::{ACCT}:root"
GROUP_ARN = f"arn:watchkeep:logs:local:{ACCT}:log-group:"
ADMIN_DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*"}]}


def record(
    name: str,
    at: datetime,
    *,
    source: str = "logs.watchkeep",
    who: str = "alice",
    ip: str = "10.0.0.1",
    error: str | None = None,
    resources: tuple[str, ...] = (),
    params: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    read_only: bool = False,
    authorization: dict[str, Any] | None = None,
    user_agent: str = "test-agent/1",
) -> dict[str, Any]:
    """A CloudTrail-shaped API-call record as the gate writes one (spec audit §2.4)."""
    identity: dict[str, Any]
    if who == "root":
        identity = {
            "type": "Root",
            "arn": ROOT,
            "accountId": ACCT,
            "accessKeyId": "WKIAROOTROOTROOTROOT",
        }
    elif who.startswith("WKIA"):
        identity = {"type": "Unknown", "accessKeyId": who}
    else:
        identity = {
            "type": "IAMUser",
            "arn": f"arn:watchkeep:iam::{ACCT}:user/{who}",
            "accountId": ACCT,
            "accessKeyId": "WKIAALICEALICEALICEA",
            "userName": who,
        }
    out: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "local",
        "sourceIPAddress": ip,
        "userAgent": user_agent,
        "requestParameters": params,
        "responseElements": response,
        "additionalEventData": {
            "watchkeep": {
                "authorization": authorization or {"decision": "Allow"},
                "httpStatus": 200,
            }
        },
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "readOnly": read_only,
        "recipientAccountId": ACCT,
        "eventCategory": "Management",
    }
    if error:
        out["errorCode"] = error
        out["errorMessage"] = f"{error} happened"
    if resources:
        out["resources"] = [{"ARN": r, "accountId": ACCT, "type": None} for r in resources]
    return out


@dataclass
class Trail:
    trail: AuditTrail
    key: Ed25519PrivateKey

    def source(
        self, *, key: Ed25519PrivateKey | None = None, iam: IamSnapshot | None = None
    ) -> ReportSource:
        return ReportSource(
            trail=self.trail,
            public_keys=[(key or self.key).public_key()],
            account=ACCOUNT,
            version="test",
            iam=iam or IamSnapshot(ACCT),
        )

    def report(self, name: str, **params: str) -> Report:
        template = TEMPLATES[name]
        # The digests were written after NOW: the range ends when the report is made.
        now = datetime.now(UTC) + timedelta(seconds=1)
        spec = ReportSpec(
            template,
            parse_params(template, params),
            NOW - timedelta(hours=1),
            now,
            {"type": "Root", "arn": ROOT},
        )
        return build_report(spec, self.source(), now=now)


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trail]:
    """Ten days of history: alice from 10.0.0.1 long ago; in the last hour, alice from a new IP,
    a denial, a deletion of a group with a quote in its name, failed sign-ins."""
    root = tmp_path_factory.mktemp("reports") / "audit" / "default"
    audit = AuditTrail(TrailConfig(root=root, account=ACCOUNT, fsync=False))
    audit.open()
    key = Ed25519PrivateKey.generate()
    digester = Digester(audit, key)
    digester.write_digest("startup")
    old = NOW - timedelta(days=10)
    # On a minute boundary, so the three failures a second apart always share one minute.
    recent = (NOW - timedelta(minutes=30)).replace(second=0)
    records = [
        record("DescribeLogGroups", old, read_only=True),
        record(
            "CreatePolicy",
            old,
            source="iam.watchkeep",
            who="root",
            params={"name": "everything", **ADMIN_DOC},
            response={"document": ADMIN_DOC},
        ),
        record(
            "AttachUserPolicy",
            old,
            source="iam.watchkeep",
            who="root",
            params={"name": "carol", "policy": "everything"},
        ),
        record("DescribeLogGroups", recent, read_only=True),
        record("DescribeLogGroups", recent, ip="203.0.113.7", read_only=True),
        record(
            "DeleteLogGroup", recent, resources=(GROUP_ARN + "o'brien",), params={"name": "o'brien"}
        ),
        record(
            "DeleteLogGroup",
            recent,
            who="bob",
            resources=(GROUP_ARN + "prod",),
            params={"name": "prod"},
            error="AccessDeniedException",
            authorization={
                "decision": "ExplicitDeny",
                "action": "logs:DeleteLogGroup",
                "resources": [GROUP_ARN + "prod"],
                "matchedPolicy": "no-prod",
                "matchedSid": "NoProd",
            },
        ),
        *(
            record(
                "ListUsers",
                recent + timedelta(seconds=i),
                who="WKIABADBADBADBADBADB",
                error="UnrecognizedClientException",
                ip="198.51.100.9",
                user_agent="=cmd|' /C calc'!A0",
            )
            for i in range(3)
        ),
        record("PutLogEvents", recent, who="carol"),
    ]
    for item in records:
        audit.append(item).result()
    digester.write_digest("scheduled")
    yield Trail(audit, key)
    audit.close()


# ---- every template on a real trail ----------------------------------------------------------


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_every_template_runs_and_attests(trail: Trail, name: str) -> None:
    params = {"access_key": "WKIAALICEALICEALICEA"} if name == "access-key-activity" else {}
    report = trail.report(name, **params)
    assert report.integrity["result"] == "valid", report.integrity["findings"]
    assert report.integrity["publicKeyFingerprints"]
    assert report.coverage["records"] == 8  # the records of the last hour
    assert report.coverage["sequenceContiguous"] is True
    assert [s.key for s in report.sections][-len(TEMPLATES[name].sections) :] == [
        s.key for s in TEMPLATES[name].sections
    ]
    for fmt in ("json", "csv", "html"):
        assert render(report, fmt)


def test_who_deleted_quotes_the_resource_literally(trail: Trail) -> None:
    rows = trail.report("who-deleted", resource="o'brien").section("deletions").records()
    assert [(r["actor"], r["outcome"]) for r in rows] == [("alice", "Success")]
    # The value is a literal, never SQL: this matches no resource, so no row.
    injected = trail.report("who-deleted", resource="x' OR true OR '")
    assert injected.section("deletions").rows == []
    everything = trail.report("who-deleted").section("deletions").records()
    assert {r["actor"] for r in everything} == {"alice", "bob"}


def test_access_denied_shows_the_explicit_deny_and_its_statement(trail: Trail) -> None:
    [row] = trail.report("access-denied").section("denials").records()
    assert row["actor"] == "bob" and row["decision"] == "ExplicitDeny"
    assert (row["matched_policy"], row["matched_sid"]) == ("no-prod", "NoProd")
    assert row["resources"] == [GROUP_ARN + "prod"]


def test_new_source_ips_uses_the_baseline(trail: Trail) -> None:
    report = trail.report("new-source-ips")
    pairs = {(r["actor"], r["source_ip"]) for r in report.section("new-pairs").records()}
    assert ("alice", "203.0.113.7") in pairs
    assert ("alice", "10.0.0.1") not in pairs  # used ten days ago: inside the 30-day baseline
    short = trail.report("new-source-ips", baseline_days="5")
    pairs = {(r["actor"], r["source_ip"]) for r in short.section("new-pairs").records()}
    assert ("alice", "10.0.0.1") in pairs  # ten days ago is outside a five-day baseline
    assert any("Baseline: 5 days" in n for n in short.notes)


def test_admins_come_from_the_policy_history(trail: Trail) -> None:
    report = trail.report("root-and-admin-activity")
    admins = report.section("admin-principals").records()
    assert [a["user_name"] for a in admins] == ["root", "carol"]
    assert "everything" in admins[1]["why"]
    calls = report.section("calls").records()
    assert [c["event_name"] for c in calls] == ["PutLogEvents"]  # carol's; not alice's


def test_auth_failures_flag_bursts_above_the_threshold(trail: Trail) -> None:
    report = trail.report("auth-failures-by-source", threshold_per_minute="2")
    [source] = report.section("by-source").records()
    assert (source["source_ip"], source["presented_key_id"], source["failures"]) == (
        "198.51.100.9",
        "WKIABADBADBADBADBADB",
        3,
    )
    [burst] = report.section("bursts").records()
    assert burst["flag"] == "possible brute force" and burst["failures"] == 3
    quiet = trail.report("auth-failures-by-source", threshold_per_minute="3")
    assert quiet.section("bursts").rows == []


def test_a_key_that_did_not_sign_the_trail_makes_the_attestation_invalid(trail: Trail) -> None:
    template = TEMPLATES["changes-last-24h"]
    now = datetime.now(UTC) + timedelta(seconds=1)
    spec = ReportSpec(template, {}, NOW - timedelta(hours=1), now, {})
    other = Ed25519PrivateKey.generate()
    report = build_report(spec, trail.source(key=other), now=now)
    assert report.integrity["result"] == "invalid"
    assert "DIGEST_KEY_UNTRUSTED" in {f["code"] for f in report.integrity["findings"]}


def test_a_range_before_any_digest_is_unverified(tmp_path: Path) -> None:
    audit = AuditTrail(
        TrailConfig(root=tmp_path / "audit" / "default", account=ACCOUNT, fsync=False)
    )
    audit.open()
    try:
        audit.append(record("DescribeLogGroups", NOW, read_only=True)).result()
        report = Trail(audit, Ed25519PrivateKey.generate()).report("changes-last-24h")
    finally:
        audit.close()
    assert report.integrity["result"].startswith("unverified")
    assert report.coverage["records"] == 1


def test_coverage_reports_downtime_and_a_stale_digest_chain(tmp_path: Path) -> None:
    clock = Clock(NOW.timestamp() - 3600)
    root = tmp_path / "audit" / "default"
    audit = AuditTrail(TrailConfig(root=root, account=ACCOUNT, fsync=False), clock=clock)
    audit.open()
    key = Ed25519PrivateKey.generate()
    try:
        Digester(audit, key, clock=clock).write_digest("startup")
        audit.append(record("CreateLogGroup", NOW - timedelta(minutes=59))).result()
        Digester(audit, key, clock=clock).write_digest("shutdown")
        clock.now += 600  # ten minutes down
        Digester(audit, key, clock=clock).write_digest("startup")
        audit.append(record("CreateLogGroup", NOW - timedelta(minutes=49))).result()
        # No digest for the last 49 minutes: the heartbeat stopped while the server ran.
        report = Trail(audit, key).report("changes-last-24h")
    finally:
        audit.close()
    gaps = {g["code"] for g in report.coverage["gaps"]}
    assert {"DOWNTIME", "STALE_DIGEST_CHAIN"} <= gaps
    assert report.integrity["result"] == "invalid"  # a stale chain is an error (spec §4.2.9)
    assert report.coverage["records"] == 2


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ---- parameters ------------------------------------------------------------------------------

BAD_PARAMS = [
    ("access-key-activity", {}, "needs access_key"),
    ("access-key-activity", {"access_key": "not a key"}, "access_key 'not a key' is not valid"),
    ("new-source-ips", {"baseline_days": "0"}, "between 1 and 400"),
    ("new-source-ips", {"baseline_days": "ten"}, "whole number"),
    ("who-deleted", {"resource": "a\x01b"}, "printable"),
    ("who-deleted", {"colour": "red"}, "takes no parameter colour"),
]


@pytest.mark.parametrize(
    ("name", "raw", "message"), BAD_PARAMS, ids=[f"{n}-{m}" for n, _r, m in BAD_PARAMS]
)
def test_bad_parameters_say_what_to_send(name: str, raw: dict[str, str], message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_params(TEMPLATES[name], raw)
    assert message in caught.value.message


def test_parameters_get_their_defaults() -> None:
    assert parse_params(TEMPLATES["new-source-ips"], {}) == {"baseline_days": 30}
    assert parse_params(TEMPLATES["top-error-principals"], {"top": "5", "format": "csv"}) == {
        "top": 5
    }


def test_template_and_format_names() -> None:
    with pytest.raises(BadRequest, match='Did you mean "who-deleted"'):
        pick_template("who-delted", TEMPLATES)
    with pytest.raises(BadRequest, match="one of json, csv, html"):
        pick_format("pdf")
    assert pick_format(None) == "json"


def test_time_range_defaults_and_checks() -> None:
    assert resolve_range(None, None, now=NOW) == (NOW - timedelta(hours=24), NOW)
    assert resolve_range("-2h", None, now=NOW) == (NOW - timedelta(hours=2), NOW)
    assert resolve_range(None, "2999-01-01T00:00:00Z", now=NOW)[1] == NOW  # not the future
    with pytest.raises(BadRequest, match="is after end"):
        resolve_range("-1h", "-2h", now=NOW)
    with pytest.raises(BadRequest) as caught:
        resolve_range("yesterday-ish", None, now=NOW)
    assert caught.value.code == "InvalidTimeRangeException"


# ---- SQL literals, admins --------------------------------------------------------------------


def test_sql_literals() -> None:
    assert sql_string("o'brien") == "'o''brien'"
    assert sql_string("back\\slash") == "'back\\slash'"
    assert sql_list([]) == "(NULL)"
    assert sql_list(["b", "a", "a"]) == "('a', 'b')"
    assert "WHERE false" in sql_relation(("k", "v"), [])
    assert sql_relation(("k", "v"), [("x", "y'z")]).endswith("(VALUES ('x', 'y''z')) AS t(k, v))")
    with pytest.raises(BadRequest):
        sql_string("nul\x00")


ADMIN_CASES = [
    ("star", {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}, True),
    ("star-colon-star", {"Statement": [{"Effect": "Allow", "Action": ["logs:*", "*:*"]}]}, True),
    ("iam-star", {"Statement": {"Effect": "Allow", "Action": "IAM:*"}}, True),
    ("not-action-outside-iam", {"Statement": [{"Effect": "Allow", "NotAction": "logs:*"}]}, True),
    ("not-action-iam", {"Statement": [{"Effect": "Allow", "NotAction": "iam:*"}]}, False),
    ("deny-star", {"Statement": [{"Effect": "Deny", "Action": "*"}]}, False),
    ("one-iam-action", {"Statement": [{"Effect": "Allow", "Action": "iam:ListUsers"}]}, False),
    ("not-a-document", "text", False),
]


@pytest.mark.parametrize(
    ("document", "expected"), [c[1:] for c in ADMIN_CASES], ids=[c[0] for c in ADMIN_CASES]
)
def test_grants_admin(document: Any, expected: bool) -> None:
    assert grants_admin(document) is expected


def test_admin_set_from_current_policies_and_groups() -> None:
    iam = IamSnapshot(
        ACCT,
        policies=(
            {
                "policy_name": "all",
                "document": ADMIN_DOC,
                "attached_to": [{"kind": "user", "name": "dave"}, {"kind": "group", "name": "ops"}],
            },
            {
                "policy_name": "ro",
                "document": {"Statement": [{"Effect": "Allow", "Action": "logs:Get*"}]},
                "attached_to": [{"kind": "user", "name": "erin"}],
            },
        ),
        group_members={"ops": ("frank",)},
    )
    history = [
        {
            "event_name": "CreatePolicy",
            "name": "old-admin",
            "document": json.dumps(ADMIN_DOC),
            "event_time": "t",
        },
        {
            "event_name": "AttachGroupPolicy",
            "name": "legacy",
            "policy": "old-admin",
            "event_time": "t",
        },
        {"event_name": "AddUserToGroup", "name": "legacy", "member": "gina", "event_time": "t"},
    ]
    found = admin_set(iam, history)
    assert sorted(found.reasons) == ["dave", "frank", "gina"]
    assert found.policies == {"all", "old-admin"}
    assert found.arns()[0] == f"arn:watchkeep:iam::{ACCT}:user/dave"


# ---- renderings ------------------------------------------------------------------------------


def test_charts_escape_labels_and_sort_bars() -> None:
    svg = bar_chart(["<b>x</b>", "y"], [1, 5], "Calls & more")
    assert "<b>" not in svg and "&lt;b&gt;x&lt;/b&gt;" in svg and "Calls &amp; more" in svg
    assert svg.index(">y<") < svg.index("&lt;b&gt;x")  # the larger value first
    assert bar_chart([], [], "empty") == ""
    columns = column_chart(["10:00", "10:01", "10:02"], [0, 2, 1], "over time")
    assert columns.count('class="column"') == 3


def csv_blocks(data: bytes) -> dict[str, list[list[str]]]:
    """``{key: [header, *rows]}`` from the CSV report: blocks split by empty lines, each opened
    by ``section,<key>,<title>``."""
    blocks: dict[str, list[list[str]]] = {}
    chunk: list[list[str]] = []
    for row in [*csv.reader(io.StringIO(data.decode("utf-8"))), []]:
        if row:
            chunk.append(row)
            continue
        title, *table = chunk
        assert title[0] == "section" and len(title) == 3, title
        blocks[title[1]] = table
        chunk = []
    return blocks


def test_csv_blocks_have_headers_and_guard_formulas(trail: Trail) -> None:
    report = trail.report("auth-failures-by-source")
    blocks = csv_blocks(render(report, "csv"))
    expected = {
        "report",
        "scope",
        "integrity",
        "integrity-findings",
        "coverage",
        "notes",
        "reviewer",
    }
    assert expected <= set(blocks)
    assert {s.key for s in report.sections} <= set(blocks)
    for key, (header, *rows) in blocks.items():
        assert all(len(r) == len(header) for r in rows), key
    agents = blocks["by-source"][1][blocks["by-source"][0].index("user_agents")]
    assert agents == "'=cmd|' /C calc'!A0"  # a spreadsheet shows it as text, never runs it
    # The JSON keeps the value as recorded.
    assert "\"=cmd|' /C calc'!A0\"" in render(report, "json").decode()


def test_html_is_self_contained_and_escaped(trail: Trail) -> None:
    page = render(trail.report("who-deleted", resource="o'brien"), "html").decode()
    assert "<script" not in page.lower() and "http://" not in page.replace(
        "http://www.w3.org/2000/svg", ""
    )
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "o&#x27;brien" in page  # the resource name, escaped
    for anchor in (
        'id="scope"',
        'id="integrity"',
        'id="coverage"',
        'id="section-deletions"',
        'id="notes"',
        'id="reviewer"',
    ):
        assert anchor in page
    assert "<svg" in page


# ---- the detached signature ------------------------------------------------------------------


def test_sidecar_verifies_and_catches_any_change(trail: Trail) -> None:
    report = trail.report("changes-last-24h")
    data = render(report, "csv")
    sidecar = sign_report(data, report, "csv", trail.key)
    assert check_report(data, sidecar, trail.key.public_key()) == []
    assert string_to_sign(sidecar).startswith(b"WK-AUDIT-REPORT-1\n" + sidecar["sha256"].encode())
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x01
    problems = check_report(bytes(flipped), sidecar, trail.key.public_key())
    assert any("was changed after it was signed" in p for p in problems)
    moved = {**sidecar, "range": {**sidecar["range"], "start": "2000-01-01T00:00:00Z"}}
    assert check_report(data, moved, trail.key.public_key()) == [
        "the signature does not verify with the trusted key"
    ]
    other = Ed25519PrivateKey.generate().public_key()
    assert any("not the trusted key" in p for p in check_report(data, sidecar, other))
    assert check_report(data, {"format": "nope"}, trail.key.public_key())[0].startswith(
        "the sidecar is not"
    )
    incomplete = {k: v for k, v in sidecar.items() if k != "reportId"}
    assert "incomplete" in check_report(data, incomplete, trail.key.public_key())[0]
