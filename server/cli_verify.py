"""``watchkeep audit verify|keygen|rotate-key|export``: integrity of the audit trail, from files.

These verbs never talk to the server (except ``verify --server``, which asks it for its live
head): they read the data directory, or a copy of it, so they work while the server is stopped.
``register(audit_app)`` adds them to the ``audit`` sub-app.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import duckdb
import httpx
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.digests import DigestError
from audit.rotation import RotationError, rotate_offline
from audit.signing import (
    SigningKeyError,
    ensure_signing_key,
    fingerprint,
    generate_key,
    load_private_key,
    load_public_key,
    public_key_pem,
)
from audit.trail import TRAIL_NAME
from audit.verify import LiveHead, verify
from audit.verify_report import EXIT_CONFIG, VerifyConfigError
from core.errors import BadRequest
from core.timeparse import parse_range_time
from server.cli_http import KeyOption, client, error_message, fail
from store.catalog_lock import CatalogInUse, connect_unshared
from store.layout import CATALOG_FILE

DataDirOption = Annotated[
    Path,
    typer.Option("--data-dir", envvar="WATCHKEEP_DATA_DIR", help="The server's data directory."),
]
DEFAULT_DATA_DIR = Path("watchkeep-data")


def verify_command(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    trail: Annotated[str, typer.Option(help="Trail name.")] = TRAIL_NAME,
    public_key: Annotated[
        list[Path] | None,
        typer.Option("--public-key", help="Trusted public key (PEM/DER, or the key file). Repeat."),
    ] = None,
    trust_local_keys: Annotated[
        bool, typer.Option(help="Also trust keys found under the data directory's audit/keys/.")
    ] = False,
    anchor: Annotated[
        list[str] | None, typer.Option("--anchor", help="Anchor JSONL file (file:/path). Repeat.")
    ] = None,
    start_time: Annotated[
        str | None, typer.Option(help="Start: RFC 3339, epoch s or -2h (default: all).")
    ] = None,
    end_time: Annotated[str | None, typer.Option(help="End (default: now).")] = None,
    grace: Annotated[
        float | None,
        typer.Option(help="Seconds of slack for freshness (default: max(60, 10% of --interval))."),
    ] = None,
    interval: Annotated[
        float, typer.Option(help="The server's audit digest interval in seconds.")
    ] = 300.0,
    expect_running: Annotated[
        bool, typer.Option(help="The server should be running: a shutdown digest is no excuse.")
    ] = False,
    follow_rotations: Annotated[
        bool, typer.Option(help="Accept a new key named by a valid rotation digest.")
    ] = True,
    server: Annotated[
        str | None, typer.Option(help="Compare with this running server's live head.")
    ] = None,
    key: KeyOption = None,
    output: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
    verbose: Annotated[bool, typer.Option(help="Also list what is valid.")] = False,
) -> None:
    """Check digests, signatures, segments and every record.

    Exit status: 0 valid (warnings allowed), 1 invalid (at least one error finding),
    2 could not check (bad usage, no trusted key, unreadable data or anchor file, or
    --server unreachable or refusing --key), 3 no digests in the requested range.
    """
    if output not in ("text", "json"):
        raise typer.BadParameter("use text or json", param_hint="--format")
    if not (math.isfinite(interval) and interval > 0):
        raise typer.BadParameter("give a number of seconds above 0", param_hint="--interval")
    if grace is not None and not (math.isfinite(grace) and grace >= 0):
        raise typer.BadParameter("give a number of seconds, 0 or more", param_hint="--grace")
    if server and not key:
        raise typer.BadParameter(
            "--server needs an access key: pass --key WKIA…:wks_… or set WATCHKEEP_KEY",
            param_hint="--key",
        )
    root = data_dir / "audit" / trail
    keys: list[Ed25519PublicKey] = []
    try:
        keys = [load_public_key(path) for path in public_key or []]
    except SigningKeyError as exc:
        _config_error(str(exc))
    if trust_local_keys:
        typer.echo(
            "warning: trusting keys found in the data directory; anyone who can write it "
            "can plant one. Pin keys with --public-key instead.",
            err=True,
        )
        for path in sorted((root / "keys").glob("*.json")):
            try:
                keys.append(load_public_key(path))
            except SigningKeyError as exc:
                typer.echo(f"warning: skipping {path}: {exc}", err=True)
    live = _live_head(server, key) if server else None
    try:
        report = verify(
            root,
            public_keys=keys,
            start=_time(start_time, "--start-time"),
            end=_time(end_time, "--end-time"),
            grace_s=grace,
            interval_s=interval,
            expect_running=expect_running,
            anchors=[Path(a.removeprefix("file:")) for a in anchor or []],
            follow_rotations=follow_rotations,
            live_head=live,
            warn=lambda message: typer.echo(f"warning: {message}", err=True),
        )
    except VerifyConfigError as exc:
        _config_error(str(exc))
    if output == "json":
        typer.echo(report.render_json())
    else:
        typer.echo(report.render_text(verbose=verbose))
    raise typer.Exit(report.exit_status)


def keygen_command(
    out: Annotated[Path, typer.Option("--out", help="Private key file to create (mode 0600).")],
) -> None:
    """Create an Ed25519 signing key; print the public key and fingerprint to pin."""
    try:
        key = generate_key(out, create_parents=False)
    except SigningKeyError as exc:
        fail(str(exc))
    public = key.public_key()
    typer.echo(public_key_pem(public), nl=False)
    typer.echo(f"fingerprint: {fingerprint(public)}")
    typer.echo(
        f"Private key written to {out}. Keep it off the data volume and give auditors the "
        "public key above out of band.",
        err=True,
    )


def rotate_key_command(
    new_key: Annotated[
        Path, typer.Option("--new-key", help="The new private key (created if it does not exist).")
    ],
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            envvar="WATCHKEEP_AUDIT_SIGNING_KEY_FILE",
            help="The current signing key (default: DATA_DIR/audit-signing.key).",
        ),
    ] = None,
    trail: Annotated[str, typer.Option(help="Trail name.")] = TRAIL_NAME,
    force: Annotated[
        bool, typer.Option(help="Rotate although the trail did not end in a shutdown digest.")
    ] = False,
) -> None:
    """Hand digest signing over to a new key, signed by the old one (server stopped)."""
    root = data_dir / "audit" / trail
    with _hold_data_dir(data_dir):
        try:
            old = load_private_key(key_file or data_dir / "audit-signing.key")
            new, generated = ensure_signing_key(new_key, create_parents=False)
        except SigningKeyError as exc:
            fail(str(exc))
        try:
            rotation = rotate_offline(root, old, new, force=force)
        except RotationError as exc:
            if generated:  # nothing names it: leave no stray key behind
                new_key.unlink(missing_ok=True)
            fail(str(exc))
        except (OSError, DigestError) as exc:
            # Part way through: a rotation digest may already name the new key, so keep it.
            fail(
                f"the rotation failed part way ({exc}); keep {new_key} and run "
                "`watchkeep audit verify` before starting the server"
            )
    if generated:
        typer.echo(public_key_pem(new.public_key()), nl=False)
    typer.echo(
        f"rotated: {rotation.digest_path.relative_to(root)} signed by "
        f"{rotation.previous_fingerprint} hands over to {rotation.fingerprint}"
    )
    typer.echo(
        f"Start the server with WATCHKEEP_AUDIT_SIGNING_KEY_FILE={new_key}, give auditors the new "
        "public key, and keep the old one pinned: verify follows the rotation either way.",
        err=True,
    )


@contextmanager
def _hold_data_dir(data_dir: Path) -> Iterator[None]:
    """Refuse when a server uses ``data_dir``; else keep it from starting until we are done.

    A running server holds DuckDB's write lock on the catalog. A read-only connection fails
    against it (naming the PID), and while open it holds a shared lock that a starting server
    cannot get. --force does not override this: it is for a trail that did not end in a
    shutdown digest, not for a chain that a live server would fork.
    """
    path = data_dir / CATALOG_FILE
    if not path.exists():
        yield  # no server ever ran here: an exported copy, or audit files alone
        return
    try:
        connection = connect_unshared(path, read_only=True)
    except CatalogInUse as exc:
        who = f"a watchkeep server (PID {exc.pid})" if exc.pid else "a running watchkeep server"
        fail(
            f"{who} is using {data_dir}: stop the server first, then rotate "
            "(--force does not override this)"
        )
    except (duckdb.IOException, duckdb.ConnectionException) as exc:
        fail(f"cannot open {path} to check that no server is using it: {exc}")
    try:
        yield
    finally:
        connection.close()


def export_command(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    to: Annotated[Path, typer.Option("--to", help="Directory to copy into.")] = Path("."),
    trail: Annotated[str, typer.Option(help="Trail name.")] = TRAIL_NAME,
) -> None:
    """Copy sealed segments, digests and signatures, ready for `audit verify --data-dir`."""
    source = data_dir / "audit" / trail
    if not (source / "segments").is_dir() and not (source / "digests").is_dir():
        fail(f"no audit trail under {source}; pass the server's --data-dir")
    if to.exists() and not to.is_dir():
        fail(f"--to {to} is not a directory; give a directory to copy into")
    target = to / "audit" / trail
    if _overlaps(source, target):
        fail(f"--to {to} holds the trail being exported ({source}); copy into another directory")
    try:
        counts = _copy_trail(source, target)
    except OSError as exc:
        where = exc.filename or to
        fail(f"cannot export to {to}: {where}: {exc.strerror or exc}")
    typer.echo(
        f"copied {counts['segments']} segments and {counts['digests']} digests to {to}; "
        f"check them with `watchkeep audit verify --data-dir {to} --public-key FILE`"
    )


def _overlaps(source: Path, target: Path) -> bool:
    """Whether copying ``source`` into ``target`` would copy files onto or into themselves."""
    a, b = source.resolve(), target.resolve()
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def _copy_trail(source: Path, target: Path) -> dict[str, int]:
    counts = {"segments": 0, "digests": 0}
    for sub, patterns in (
        ("segments", ("*.parquet",)),
        ("digests", ("*.json", "*.json.sig")),
        ("keys", ("*.json",)),
    ):
        for pattern in patterns:
            for path in sorted((source / sub).rglob(pattern)):
                if path.name.startswith("."):
                    continue  # a file being written
                destination = target / path.relative_to(source)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, destination)
                if sub in counts and not path.name.endswith(".sig"):
                    counts[sub] += 1
    state = source / "state" / "trail.json"
    if state.exists():
        (target / "state").mkdir(parents=True, exist_ok=True)
        shutil.copy2(state, target / "state" / "trail.json")
    return counts


def register(app: typer.Typer) -> None:
    """Add ``verify``, ``keygen``, ``rotate-key`` and ``export`` to the ``audit`` sub-app."""
    app.command("verify")(verify_command)
    app.command("keygen")(keygen_command)
    app.command("rotate-key")(rotate_key_command)
    app.command("export")(export_command)


def _time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        millis = parse_range_time(value, now_ms=int(time.time() * 1000))
    except BadRequest as exc:
        raise typer.BadParameter(exc.message, param_hint=option) from None
    return datetime.fromtimestamp(millis / 1000, UTC)


def _live_head(server: str, key: str | None) -> Callable[[], LiveHead]:
    """Ask the server for its head; any failure means verify could not check (exit 2), which
    must not read as "trail invalid" (exit 1)."""

    def fetch() -> LiveHead:
        try:
            with client(server, key) as http:
                response = http.get("/api/v1/audit/status")
        except httpx.HTTPError as exc:
            raise VerifyConfigError(
                f"cannot reach the server at {server} ({exc}); is `watchkeep serve` running?"
            ) from None
        if response.status_code >= 400:
            raise VerifyConfigError(
                f"the server at {server} refused GetTrailStatus (HTTP {response.status_code}: "
                f"{error_message(response)}); check --key"
            )
        try:
            status = response.json()
            head = LiveHead(int(status["chain_head_seq"]), status["latest_digest_seq"], server)
        except (ValueError, KeyError, TypeError):
            raise VerifyConfigError(
                f"the server at {server} does not report chain_head_seq and "
                "latest_digest_seq; upgrade it"
            ) from None
        return head

    return fetch


def _config_error(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_CONFIG)


__all__ = [
    "export_command",
    "keygen_command",
    "register",
    "rotate_key_command",
    "verify_command",
]
