"""``audit verify`` on a real trail: the clean control run, freshness, shutdowns, anchors,
configuration problems, the renderings and the CLI verbs (keygen, verify, export).

``build_trail`` writes the data directory the tampering tests start from: an ``AuditTrail``
with a controllable clock, a ``Digester`` signing every 300 s, three sealed segments of eight
records (1-8, 9-16, 17-24, one per digest), an idle heartbeat digest, and four unsigned records
in the WAL (25-28). A file anchor outside the data directory received every digest.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from audit.digests import Digester
from audit.record import Account, service_event_record
from audit.signing import fingerprint, generate_key
from audit.trail import AuditTrail, TrailConfig
from audit.verify import LiveHead, verify
from audit.verify_report import VerifyConfigError, VerifyReport
from server.cli_verify import register

ACCOUNT = Account("local", "000000000000")
T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC).timestamp()
INTERVAL_S = 300.0
CHECKPOINT_EVERY = 5


class Clock:
    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Built:
    data_dir: Path
    key_file: Path
    key: Ed25519PrivateKey
    anchor: Path
    end_ts: float  # the clock when the trail was left running

    @property
    def root(self) -> Path:
        return self.data_dir / "audit" / "default"

    def copy(self, destination: Path) -> Path:
        """A copy of the data directory; returns its audit trail root."""
        shutil.copytree(self.data_dir, destination)
        return destination / "audit" / "default"


def open_trail(root: Path, clock: Clock) -> AuditTrail:
    trail = AuditTrail(TrailConfig(root=root, account=ACCOUNT, fsync=False), clock=clock)
    trail.open()
    return trail


def append(trail: AuditTrail, clock: Clock, name: str = "Thing", **details: Any) -> int:
    clock.advance(1)
    at = datetime.fromtimestamp(clock.now, UTC)
    return trail.append(service_event_record(name, details, ACCOUNT, at=at)).result().seq


def digester(trail: AuditTrail, key: Ed25519PrivateKey, clock: Clock, anchor: Path) -> Digester:
    return Digester(
        trail,
        key,
        interval_s=INTERVAL_S,
        checkpoint_every=CHECKPOINT_EVERY,
        anchors=[f"file:{anchor}"],
        clock=clock,
    )


def build_trail(base: Path, *, key: Ed25519PrivateKey | None = None) -> tuple[Built, AuditTrail]:
    """The reference data directory (see the module docstring); the trail is left open."""
    clock = Clock()
    key_file = base / "keys" / "audit-signing.key"
    if key is None:
        key = generate_key(key_file)
    anchor = base / "anchors" / "audit.jsonl"
    anchor.parent.mkdir(parents=True)
    data_dir = base / "data"
    trail = open_trail(data_dir / "audit" / "default", clock)
    digests = digester(trail, key, clock, anchor)
    digests.write_digest("startup")  # 1
    for batch in range(3):  # 2, 3, 4
        for index in range(8):
            append(trail, clock, batch=batch, index=index)
        trail.seal()
        clock.advance(INTERVAL_S)
        digests.write_digest("scheduled")
    clock.advance(INTERVAL_S)
    digests.write_digest("scheduled")  # 5: a heartbeat
    for index in range(4):
        append(trail, clock, "Tail", index=index)
    return Built(data_dir, key_file, key, anchor, clock.now), trail


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    result, trail = build_trail(tmp_path_factory.mktemp("trail"))
    yield result
    trail.close()


def run(root: Path, built: Built, **overrides: Any) -> VerifyReport:
    options: dict[str, Any] = {
        "public_keys": [built.key.public_key()],
        "now": datetime.fromtimestamp(built.end_ts + 10, UTC),
        "anchors": [built.anchor],
        "interval_s": INTERVAL_S,
    }
    options.update(overrides)
    return verify(root, **options)


# ---- the control run ---------------------------------------------------------------------


def test_the_untouched_copy_verifies_clean_with_an_unsigned_tail(
    built: Built, tmp_path: Path
) -> None:
    report = run(built.copy(tmp_path / "copy"), built)
    assert report.codes() == ["TAIL_UNSIGNED"]
    tail = report.findings[0]
    assert (tail.severity, tail.seq_start, tail.seq_end) == ("info", 25, 28)
    assert tail.path == "wal/wal-000000000025.jsonl"
    assert report.exit_status == 0
    assert report.summary == {
        "digestsValid": 5,
        "digestsTotal": 5,
        "segmentsValid": 3,
        "segmentsTotal": 3,
        "recordsVerified": 28,
        "recordsTotal": 28,
        "errors": 0,
        "warnings": 0,
        "info": 1,
    }


def test_text_rendering_has_one_line_per_object(built: Built, tmp_path: Path) -> None:
    report = run(built.copy(tmp_path / "copy"), built)
    text = report.render_text(verbose=True).splitlines()
    assert text[0] == (
        f"Verifying trail default (trail_id {report.trail_id}) from 2026-01-05T12:00:00Z "
        "to 2026-01-05T12:20:38Z"
    )
    assert text[1] == ("DIGEST   digests/2026/01/05/default_00000001_20260105T120000Z.json   valid")
    assert (
        "SEGMENT  segments/2026/01/05/default_000000000009-000000000016_20260105T120516Z.parquet"
        "   valid"
    ) in text
    assert text[-5] == (
        "TAIL     wal/wal-000000000025.jsonl   info: TAIL_UNSIGNED 4 records seq=25..28, "
        "chain intact"
    )
    assert text[-3:] == [
        "Results requested for 2026-01-05T12:00:00Z to 2026-01-05T12:20:38Z",
        "Results found for 2026-01-05T12:00:00Z to 2026-01-05T12:20:24Z",
        "5/5 digests valid; 3/3 segments valid; 28/28 records verified; 0 errors, 0 warnings",
    ]
    quiet = report.render_text().splitlines()
    assert not any(line.endswith("   valid") for line in quiet)


def test_json_rendering(built: Built, tmp_path: Path) -> None:
    report = run(built.copy(tmp_path / "copy"), built)
    document = json.loads(report.render_json())
    assert document["result"] == "valid"
    assert document["requested"] == {"start": "2026-01-05T12:00:00Z", "end": "2026-01-05T12:20:38Z"}
    assert document["found"] == {"start": "2026-01-05T12:00:00Z", "end": "2026-01-05T12:20:24Z"}
    assert list(document["findings"][0]) == [
        "code",
        "severity",
        "kind",
        "path",
        "digestSeq",
        "seqStart",
        "seqEnd",
        "eventId",
        "expected",
        "actual",
        "message",
    ]


# ---- freshness, shutdowns and restarts ---------------------------------------------------


def test_a_chain_that_stopped_without_a_shutdown_digest_is_stale(
    built: Built, tmp_path: Path
) -> None:
    later = datetime.fromtimestamp(built.end_ts + 3600, UTC)
    report = run(built.copy(tmp_path / "copy"), built, now=later)
    assert report.codes() == ["TAIL_UNSIGNED", "STALE_DIGEST_CHAIN"]
    stale = report.findings[1]
    assert stale.digest_seq == 5
    assert stale.line_subject() == "(after #00000005 ending 2026-01-05T12:20:24Z)"
    assert stale.message == "last digest is 1h0m old, interval 5m"
    assert report.exit_status == 1
    within_grace = datetime.fromtimestamp(built.end_ts + INTERVAL_S + 40, UTC)
    assert run(built.copy(tmp_path / "again"), built, now=within_grace).exit_status == 0


def test_shutdown_waives_staleness_and_restarts_are_reported(tmp_path: Path) -> None:
    clock = Clock()
    key = generate_key(tmp_path / "key.pem")
    anchor = tmp_path / "anchor.jsonl"
    root = tmp_path / "data" / "audit" / "default"
    trail = open_trail(root, clock)
    digests = digester(trail, key, clock, anchor)
    digests.write_digest("startup")
    append(trail, clock)
    digests.write_digest("shutdown")
    trail.close()

    clock.advance(7200)
    trail = open_trail(root, clock)
    digests = digester(trail, key, clock, anchor)
    assert digests.latest is not None and digests.latest.seq == 2
    digests.write_digest("startup")  # after a clean shutdown: DOWNTIME
    append(trail, clock)
    trail.close()  # a crash: no shutdown digest

    clock.advance(60)
    trail = open_trail(root, clock)
    digests = digester(trail, key, clock, anchor)
    digests.write_digest("startup")  # UNCLEAN_SHUTDOWN
    digests.write_digest("shutdown")
    trail.close()

    long_after = datetime.fromtimestamp(clock.now + 86400, UTC)
    report = verify(root, public_keys=[key.public_key()], now=long_after, anchors=[anchor])
    assert report.codes() == ["DOWNTIME", "UNCLEAN_SHUTDOWN"]
    downtime, unclean = report.findings
    assert downtime.digest_seq == 3 and "2h0m" in downtime.message
    assert unclean.digest_seq == 4 and unclean.severity == "warning"
    assert report.exit_status == 0
    expecting = verify(root, public_keys=[key.public_key()], now=long_after, expect_running=True)
    assert "STALE_DIGEST_CHAIN" in expecting.codes()


def test_clock_regression_is_a_warning(tmp_path: Path) -> None:
    clock = Clock()
    key = generate_key(tmp_path / "key.pem")
    root = tmp_path / "data" / "audit" / "default"
    trail = open_trail(root, clock)
    digests = digester(trail, key, clock, tmp_path / "anchor.jsonl")
    append(trail, clock)
    clock.advance(-600)
    append(trail, clock)
    clock.advance(600)
    digests.write_digest("startup")
    trail.close()
    report = verify(
        root, public_keys=[key.public_key()], now=datetime.fromtimestamp(clock.now, UTC)
    )
    assert report.codes() == ["CLOCK_REGRESSION"]
    assert report.findings[0].seq_start == 2
    assert report.exit_status == 0


# ---- time ranges -------------------------------------------------------------------------


def test_a_time_range_limits_the_digests_checked(built: Built, tmp_path: Path) -> None:
    root = built.copy(tmp_path / "copy")
    report = run(
        root,
        built,
        start=datetime.fromtimestamp(T0 + 400, UTC),
        end=datetime.fromtimestamp(T0 + 700, UTC),
    )
    assert report.digests_total == 2  # #2 ends at +308 and is out; #3 and #4 overlap
    assert report.segments_total == 2
    assert report.found == {"start": "2026-01-05T12:05:08Z", "end": "2026-01-05T12:15:24Z"}
    assert report.exit_status == 0


def test_no_digests_in_the_range_exits_3(built: Built, tmp_path: Path) -> None:
    report = run(
        built.copy(tmp_path / "copy"),
        built,
        start=datetime.fromtimestamp(T0 - 7200, UTC),
        end=datetime.fromtimestamp(T0 - 3600, UTC),
    )
    assert report.digests_total == 0
    assert report.exit_status == 3


# ---- configuration problems --------------------------------------------------------------


def test_no_trusted_key_or_no_directory_is_a_configuration_error(
    built: Built, tmp_path: Path
) -> None:
    with pytest.raises(VerifyConfigError, match="no trusted public key"):
        verify(built.root, public_keys=[])
    with pytest.raises(VerifyConfigError, match="not a readable audit trail directory"):
        verify(tmp_path / "nowhere", public_keys=[built.key.public_key()])


def test_a_key_that_is_not_pinned_makes_every_digest_untrusted(
    built: Built, tmp_path: Path
) -> None:
    stranger = Ed25519PrivateKey.generate().public_key()
    report = run(built.copy(tmp_path / "copy"), built, public_keys=[stranger])
    assert set(report.codes()) >= {"DIGEST_KEY_UNTRUSTED"}
    assert report.exit_status == 1


# ---- the live head -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("live", "codes"),
    [
        (LiveHead(28, 5), []),
        (LiveHead(20, 5), ["LIVE_HEAD_BEHIND"]),
        (LiveHead(28, 9), ["LIVE_HEAD_AHEAD"]),
    ],
    ids=["in-step", "behind", "ahead"],
)
def test_the_live_head_is_compared_with_the_disk(
    built: Built, tmp_path: Path, live: LiveHead, codes: list[str]
) -> None:
    report = run(built.copy(tmp_path / "copy"), built, live_head=lambda: live)
    assert [c for c in report.codes() if c != "TAIL_UNSIGNED"] == codes


# ---- the CLI -----------------------------------------------------------------------------


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_cli_keygen_prints_the_public_key_and_fingerprint(tmp_path: Path) -> None:
    out = tmp_path / "signing.key"
    result = CliRunner().invoke(cli(), ["keygen", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "-----BEGIN PUBLIC KEY-----" in result.stdout
    assert out.stat().st_mode & 0o777 == 0o600
    from audit.signing import load_private_key

    expected = fingerprint(load_private_key(out).public_key())
    assert f"fingerprint: {expected}" in result.stdout
    again = CliRunner().invoke(cli(), ["keygen", "--out", str(out)])
    assert again.exit_code == 1
    assert "already exists" in again.stderr


def test_cli_verify_exit_status_and_formats(built: Built, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    built.copy(copy)
    public = tmp_path / "audit.pub"
    from audit.signing import public_key_pem

    public.write_text(public_key_pem(built.key.public_key()))
    base = ["verify", "--data-dir", str(copy), "--public-key", str(public)]
    end = ["--end-time", datetime.fromtimestamp(built.end_ts + 10, UTC).isoformat()]
    result = CliRunner().invoke(cli(), [*base, *end, "--anchor", f"file:{built.anchor}"])
    assert result.exit_code == 0, result.output
    assert "0 errors, 0 warnings" in result.stdout

    as_json = CliRunner().invoke(cli(), [*base, *end, "--format", "json"])
    assert json.loads(as_json.stdout)["result"] == "valid"

    stale = CliRunner().invoke(cli(), base)  # now, long after the built trail's last digest
    assert stale.exit_code == 1
    assert "INVALID: STALE_DIGEST_CHAIN" in stale.stdout

    no_key = CliRunner().invoke(cli(), ["verify", "--data-dir", str(copy)])
    assert no_key.exit_code == 2
    assert "no trusted public key" in no_key.stderr

    local = CliRunner().invoke(
        cli(), ["verify", "--data-dir", str(copy), "--trust-local-keys", *end]
    )
    assert local.exit_code == 0, local.output
    assert "warning: trusting keys found in the data directory" in local.stderr


def test_cli_export_copies_what_verify_needs(built: Built, tmp_path: Path) -> None:
    exported = tmp_path / "export"
    result = CliRunner().invoke(
        cli(), ["export", "--data-dir", str(built.data_dir), "--to", str(exported)]
    )
    assert result.exit_code == 0, result.output
    assert "copied 3 segments and 5 digests" in result.stdout
    root = exported / "audit" / "default"
    assert not (root / "wal").exists()
    report = run(root, built)
    assert report.codes() == []
    assert report.exit_status == 0


def test_cli_rejects_a_bad_time(built: Built) -> None:
    result = CliRunner().invoke(
        cli(),
        [
            "verify",
            "--data-dir",
            str(built.data_dir),
            "--public-key",
            str(built.key_file),
            "--start-time",
            "yesterday-ish",
        ],
    )
    assert result.exit_code == 2
    assert "--start-time" in result.output


def test_now_defaults_to_the_wall_clock(built: Built, tmp_path: Path) -> None:
    report = run(built.copy(tmp_path / "copy"), built, now=None)
    assert report.requested["end"] is not None
    assert datetime.fromisoformat(str(report.requested["end"]).replace("Z", "+00:00")) > (
        datetime.now(UTC) - timedelta(minutes=1)
    )
