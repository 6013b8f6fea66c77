"""The offline ``audit`` verbs given awkward input: anchor files that anchor nothing, numbers
that are no durations, and paths where no key or export can go. Each ends in a clear error and
the documented exit status, never a traceback or a silent pass."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from audit.signing import public_key_pem
from server.cli_verify import register
from tests.audit.test_verify import Built, build_trail


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli(), list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    result, trail = build_trail(tmp_path_factory.mktemp("trail"))
    yield result
    trail.close()


@pytest.fixture
def verify_args(built: Built, tmp_path: Path) -> list[str]:
    copy = tmp_path / "copy"
    built.copy(copy)
    public = tmp_path / "audit.pub"
    public.write_text(public_key_pem(built.key.public_key()))
    end = datetime.fromtimestamp(built.end_ts + 10, UTC).isoformat()
    return ["verify", "--data-dir", str(copy), "--public-key", str(public), "--end-time", end]


# ---- verify --anchor -----------------------------------------------------------------------


def anchor_lines(built: Built) -> list[dict[str, object]]:
    return [json.loads(line) for line in built.anchor.read_text().splitlines()]


@pytest.mark.parametrize(
    "content",
    [
        os.urandom(64) + b"\n\x00\xff\n",
        b"",
        b"not json at all\n{}\n[1, 2]\n",
        b"other trail",  # replaced by records of another trail below
    ],
    ids=["binary", "empty", "malformed", "other-trail"],
)
def test_an_anchor_file_that_anchors_nothing_does_not_pass(
    built: Built, verify_args: list[str], tmp_path: Path, content: bytes
) -> None:
    anchor = tmp_path / "anchor.jsonl"
    if content == b"other trail":
        records = [
            {**r, "trailId": "00000000-0000-4000-8000-000000000000"} for r in anchor_lines(built)
        ]
        content = "".join(json.dumps(r) + "\n" for r in records).encode()
    anchor.write_bytes(content)
    code, _out, err = invoke(*verify_args, "--anchor", f"file:{anchor}")
    assert code == 2, err
    assert f"anchor file {anchor} contains no anchor records for trail default" in err


def test_a_malformed_anchor_line_is_reported_not_a_crash(
    built: Built, verify_args: list[str], tmp_path: Path
) -> None:
    records = anchor_lines(built)
    bad = {**records[0], "digestSeq": "abc"}
    anchor = tmp_path / "anchor.jsonl"
    anchor.write_text(json.dumps(bad) + "\n")
    code, _out, err = invoke(*verify_args, "--anchor", f"file:{anchor}")
    assert code == 2
    assert "line 1 is not an anchor record (digestSeq 'abc' is not a sequence number)" in err

    anchor.write_text("".join(json.dumps(r) + "\n" for r in [bad, *records]))
    code, out, err = invoke(*verify_args, "--anchor", f"file:{anchor}")
    assert code == 0, out + err  # the good records still anchor the trail
    assert "warning: anchor file" in err and "line 1 is not an anchor record" in err


# ---- verify --grace / --interval ----------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        ("--grace", "nan"),
        ("--grace", "-5"),
        ("--grace", "inf"),
        ("--interval", "nan"),
        ("--interval", "0"),
        ("--interval", "-1"),
        ("--interval", "inf"),
    ],
    ids="=".join,
)
def test_durations_must_be_finite_and_positive(
    verify_args: list[str], option: tuple[str, str]
) -> None:
    code, out, err = invoke(*verify_args, *option)
    assert code == 2, out + err
    assert option[0] in err


# ---- keygen --------------------------------------------------------------------------------


def test_keygen_into_a_missing_directory_creates_nothing(tmp_path: Path) -> None:
    out = tmp_path / "nonexistent" / "dir" / "k.key"
    code, _out, err = invoke("keygen", "--out", str(out))
    assert code == 1
    assert f"the directory {out.parent} does not exist" in err
    assert not (tmp_path / "nonexistent").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_keygen_where_no_file_can_be_created_is_a_clean_error() -> None:
    code, _out, err = invoke("keygen", "--out", "/proc/k.key")
    assert code == 1
    assert err.startswith("error: cannot create key file /proc/k.key")


# ---- export --------------------------------------------------------------------------------


def test_export_to_a_file_the_data_dir_or_nowhere_is_a_clean_error(
    built: Built, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    built.copy(data_dir)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    targets = {str(a_file): "is not a directory", str(data_dir): "holds the trail"}
    if Path("/proc/self").is_dir():
        targets["/proc/x"] = "cannot export to /proc/x"
    for target, message in targets.items():
        code, _out, err = invoke("export", "--data-dir", str(data_dir), "--to", target)
        assert code == 1, (target, err)
        assert err.startswith("error:") and message in err, err
    code, out, err = invoke("export", "--data-dir", str(data_dir), "--to", str(tmp_path / "out"))
    assert code == 0, err
    assert "copied 3 segments" in out
