"""Spec audit §6.2 report items on a real server: the time zone, the parameters and the query
text in the report, and the reviewer acknowledgement (``report-ack``, AcknowledgeAuditReport)
recorded in the trail and tied to the exact report bytes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from audit.reports.sidecar import SHA256_HEADER, SIDECAR_HEADER
from server.cli_report import register
from tests.conftest import ADMIN_KEY, RunningServer, make_settings


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    settings = make_settings(tmp_path / "data", audit_signing_key_file=tmp_path / "a.key")
    running = RunningServer(settings).start()
    yield running
    running.stop()


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60
    ) as client:
        yield client


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def records(server: RunningServer, name: str) -> list[dict[str, object]]:
    trail = server.app.state.services.trail
    trail.seal(force=True)
    found = []
    for path in trail.snapshot()[0]:
        for text in pq.read_table(path, columns=["record_json"]).column(0).to_pylist():
            record = json.loads(text)
            if record["eventName"] == name:
                found.append(record)
    return found


def test_the_report_states_time_zone_parameters_and_queries(http: httpx.Client) -> None:
    response = http.get(
        "/api/v1/audit/report", params={"template": "top-error-principals", "top": "5"}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["scope"]["timeZone"] == "UTC"
    assert report["template"]["parameters"] == {"top": 5}
    [section, *_] = report["sections"]
    assert section["query"].startswith(("SELECT", "WITH")) and "LIMIT 5" in section["query"]
    assert report["reviewer"]["status"] == "not reviewed"
    assert "report-ack" in report["reviewer"]["acknowledgeWith"]
    csv = http.get(
        "/api/v1/audit/report", params={"template": "top-error-principals", "format": "csv"}
    ).text
    assert f"query.{section['key']}" in csv
    html = http.get(
        "/api/v1/audit/report", params={"template": "top-error-principals", "format": "html"}
    ).text
    assert "<summary>Query</summary>" in html and "timeZone" in html


def test_report_ack_records_who_reviewed_which_bytes(
    server: RunningServer, http: httpx.Client, tmp_path: Path
) -> None:
    response = http.get("/api/v1/audit/report", params={"template": "access-denied"})
    sidecar = json.loads(base64.urlsafe_b64decode(response.headers[SIDECAR_HEADER]))
    report_file = tmp_path / "report.json"
    report_file.write_bytes(response.content)
    (tmp_path / "report.json.sig.json").write_text(json.dumps(sidecar))
    result = CliRunner().invoke(
        cli(),
        [
            "report-ack",
            *("--file", str(report_file), "--notes", "two denials followed up"),
            *("--server", server.url, "--key", ADMIN_KEY),
        ],
    )
    assert result.exit_code == 0, result.output
    ack = json.loads((tmp_path / "report.json.ack.json").read_text())
    assert ack["reportId"] == sidecar["reportId"]
    assert ack["reportSha256"] == response.headers[SHA256_HEADER]
    assert ack["reviewedBy"]["arn"] and ack["status"] == "reviewed"
    [record] = records(server, "AcknowledgeAuditReport")
    assert record["readOnly"] is False
    parameters = record["requestParameters"]
    assert isinstance(parameters, dict)
    assert parameters["report_id"] == sidecar["reportId"]
    assert parameters["report_sha256"] == response.headers[SHA256_HEADER]
    q9 = http.get(
        "/api/v1/audit/report", params={"template": "audit-trail-access-and-config"}
    ).json()
    named = json.dumps(q9["sections"])
    assert "AcknowledgeAuditReport" in named


def test_a_changed_report_cannot_be_acknowledged(
    server: RunningServer, http: httpx.Client, tmp_path: Path
) -> None:
    response = http.get("/api/v1/audit/report", params={"template": "access-denied"})
    sidecar = json.loads(base64.urlsafe_b64decode(response.headers[SIDECAR_HEADER]))
    report_file = tmp_path / "report.json"
    report_file.write_bytes(response.content + b" ")
    (tmp_path / "report.json.sig.json").write_text(json.dumps(sidecar))
    result = CliRunner().invoke(
        cli(),
        ["report-ack", "--file", str(report_file), "--server", server.url, "--key", ADMIN_KEY],
    )
    assert result.exit_code == 1
    assert "changed after signing" in result.output
    assert records(server, "AcknowledgeAuditReport") == []


@pytest.mark.parametrize("report_id", ["-" * 36, "g" * 36, "12345678-1234-1234-1234-1234567890abc"])
def test_an_acknowledgement_names_a_report_id(http: httpx.Client, report_id: str) -> None:
    response = http.post("/api/v1/audit/report/ack", json={"report_id": report_id})
    assert response.status_code == 400, response.text
    assert "report_id" in response.json()["error"]["message"]
