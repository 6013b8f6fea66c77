"""``watchkeep audit report``, ``report-verify`` and ``report-ack``: signed audit reports.

``report`` asks a running server (GenerateReport) and writes the report and its detached
signature, ``<file>.sig.json``, side by side. ``report-verify`` needs no server: it checks a
report file against its sidecar with a public key given out of band (exit 0 valid, 1 invalid,
2 when it cannot check). ``report-ack`` records a review (AcknowledgeAuditReport) and writes
the answer to ``<file>.ack.json``. ``register(audit_app)`` adds them to the ``audit`` sub-app.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer

from audit.reports import SIDECAR_SUFFIX, TEMPLATES, check_report, render_sidecar, sha256_hex
from audit.reports.sidecar import SHA256_HEADER, SIDECAR_HEADER
from audit.signing import SigningKeyError, load_public_key
from audit.verify_report import EXIT_CONFIG, EXIT_INVALID
from server.cli_http import (
    DEFAULT_SERVER,
    KeyOption,
    ServerOption,
    call,
    client,
    fail,
    request,
)

_NAMES = ", ".join(TEMPLATES)
ACK_SUFFIX = ".ack.json"


def report_command(
    template: Annotated[str, typer.Option("--template", "-t", help=f"One of: {_NAMES}.")],
    start: Annotated[
        str | None, typer.Option("--from", help="Start: -24h, epoch s or RFC 3339 (default: -24h).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="End (default: now).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="html, csv or json.")] = "html",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Report file (default: a name of its own).")
    ] = None,
    resource: Annotated[
        str | None, typer.Option(help="who-deleted: the resource name or ARN.")
    ] = None,
    access_key: Annotated[
        str | None, typer.Option(help="access-key-activity: the access key ID.")
    ] = None,
    baseline_days: Annotated[
        int | None, typer.Option(help="new-source-ips: days that count as known (30).")
    ] = None,
    top: Annotated[int | None, typer.Option(help="top-error-principals: how many (20).")] = None,
    threshold_per_minute: Annotated[
        int | None, typer.Option(help="auth-failures-by-source: burst threshold (10).")
    ] = None,
    key_age_days: Annotated[
        int | None, typer.Option(help="credential-lifecycle: flag active keys older (90).")
    ] = None,
    server: ServerOption = DEFAULT_SERVER,
    key: KeyOption = None,
) -> None:
    """Generate a signed audit report; write FILE and FILE.sig.json."""
    if fmt not in ("html", "csv", "json"):
        raise typer.BadParameter("use html, csv or json", param_hint="--format")
    params: dict[str, Any] = {"template": template, "format": fmt, "start": start, "end": end}
    params.update(
        resource=resource,
        access_key=access_key,
        baseline_days=baseline_days,
        top=top,
        threshold_per_minute=threshold_per_minute,
        key_age_days=key_age_days,
    )
    params = {k: v for k, v in params.items() if v is not None}
    with client(server, key) as http:
        response = _fetch(http, params)
    data = response.content
    sidecar = _sidecar(response)
    if sha256_hex(data) != response.headers.get(SHA256_HEADER) or sidecar["sha256"] != sha256_hex(
        data
    ):
        fail("the report arrived damaged: its SHA-256 does not match the server's; try again")
    path = out or Path(_default_name(sidecar, fmt))
    sidecar_path = path.with_name(path.name + SIDECAR_SUFFIX)
    try:
        path.write_bytes(data)
        sidecar_path.write_bytes(render_sidecar(sidecar))
    except OSError as exc:
        fail(f"cannot write the report: {exc}")
    typer.echo(
        f"wrote {path} ({len(data):,} bytes) and {sidecar_path}\n"
        f"sha256 {sidecar['sha256']}, signed by key {sidecar['publicKeyFingerprint'][:16]}…\n"
        f"check it with: watchkeep audit report-verify {path} --public-key KEY"
    )


def report_verify_command(
    file: Annotated[Path, typer.Argument(help="The report file.")],
    public_key: Annotated[
        Path, typer.Option("--public-key", help="The audit public key to trust (PEM or DER).")
    ],
    sidecar: Annotated[
        Path | None, typer.Option(help="The signature file (default: FILE.sig.json).")
    ] = None,
) -> None:
    """Check a report against its detached signature; exit 0 valid, 1 invalid, 2 unchecked."""
    sidecar_path = sidecar or file.with_name(file.name + SIDECAR_SUFFIX)
    try:
        key = load_public_key(public_key)
    except SigningKeyError as exc:
        _unchecked(str(exc))
    try:
        data = file.read_bytes()
        text = sidecar_path.read_bytes()
    except OSError as exc:
        _unchecked(f"cannot read {exc.filename}: {exc.strerror}")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    problems = check_report(data, document, key)
    if problems:
        for problem in problems:
            typer.echo(f"INVALID: {problem}")
        raise typer.Exit(EXIT_INVALID)
    typer.echo(
        f"valid: {file} is the {document['reportFormat']} report {document['template']} "
        f"({document['range']['start']} to {document['range']['end']}), generated "
        f"{document['generatedAt']}, sha256 {document['sha256']}, signed by key "
        f"{document['publicKeyFingerprint']}"
    )


def report_ack_command(
    report_id: Annotated[
        str | None, typer.Option(help="The reportId (default: read from FILE's sidecar).")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="The report reviewed: pins its SHA-256.")
    ] = None,
    notes: Annotated[str | None, typer.Option(help="Review notes, exceptions followed up.")] = None,
    server: ServerOption = DEFAULT_SERVER,
    key: KeyOption = None,
) -> None:
    """Record that you reviewed a report (AcknowledgeAuditReport); write FILE.ack.json."""
    body: dict[str, Any] = {"report_id": report_id, "notes": notes}
    if file is not None:
        try:
            data = file.read_bytes()
            sidecar = json.loads(file.with_name(file.name + SIDECAR_SUFFIX).read_bytes())
        except (OSError, ValueError) as exc:
            fail(f"cannot read the report or its {SIDECAR_SUFFIX}: {exc}")
        if not isinstance(sidecar, dict):
            fail(f"the {SIDECAR_SUFFIX} of {file} is not a report signature")
        if sidecar.get("sha256") != sha256_hex(data):
            fail(f"{file} does not match its signature file: it was changed after signing")
        signed_id = sidecar.get("reportId")
        if report_id is not None and signed_id and report_id != signed_id:
            # The ack pins these bytes to a report id: pairing them with another report's id
            # would record a review of a report nobody reviewed.
            raise typer.BadParameter(
                f"{report_id} is not the report in {file}, whose signature names {signed_id}; "
                "omit --report-id to acknowledge that report",
                param_hint="--report-id",
            )
        body.update(report_sha256=sha256_hex(data), template=sidecar.get("template"))
        body["report_id"] = report_id or signed_id
    if not body["report_id"]:
        raise typer.BadParameter("give --report-id or --file", param_hint="--report-id")
    with client(server, key) as http:
        answer = call(http, "POST", "/api/v1/audit/report/ack", json=body)
    if file is not None:
        ack_path = file.with_name(file.name + ACK_SUFFIX)
        ack_path.write_text(json.dumps(answer, indent=2, ensure_ascii=False) + "\n")
        typer.echo(f"wrote {ack_path}")
    typer.echo(
        f"acknowledged report {answer['reportId']} as {answer['reviewedBy'].get('arn')} at "
        f"{answer['reviewedAt']}"
    )


def register(app: typer.Typer) -> None:
    """Add ``report``, ``report-verify`` and ``report-ack`` to the ``audit`` sub-app."""
    app.command("report")(report_command)
    app.command("report-verify")(report_verify_command)
    app.command("report-ack")(report_ack_command)


def _fetch(http: httpx.Client, params: dict[str, Any]) -> httpx.Response:
    return request(http, "GET", "/api/v1/audit/report", params=params, timeout=300.0)


def _sidecar(response: httpx.Response) -> dict[str, Any]:
    encoded = response.headers.get(SIDECAR_HEADER)
    try:
        sidecar = json.loads(base64.urlsafe_b64decode(encoded or ""))
    except (ValueError, binascii.Error):
        fail(f"the server sent no readable {SIDECAR_HEADER} header; is it a watchkeep server?")
    if not isinstance(sidecar, dict) or "sha256" not in sidecar:
        fail(f"the server's {SIDECAR_HEADER} header is not a report signature")
    return sidecar


def _default_name(sidecar: dict[str, Any], fmt: str) -> str:
    """``watchkeep-report-<template>-<generatedAt>.<fmt>`` in the current directory; the
    server's values are filtered, so no path can come from it."""
    template = re.sub(r"[^a-z0-9-]", "", str(sidecar.get("template", "")))[:64] or "report"
    stamp = re.sub(r"[^0-9TZ]", "", str(sidecar.get("generatedAt", "")))[:16]
    return f"watchkeep-report-{template}-{stamp}.{fmt}"


def _unchecked(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_CONFIG)


__all__ = ["register", "report_ack_command", "report_command", "report_verify_command"]
