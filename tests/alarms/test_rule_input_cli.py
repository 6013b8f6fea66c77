"""``watchkeep alarms validate|test|eval`` given awkward input: clean errors with exit 1 and
warnings with exit 0, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from server.cli import app

EXAMPLES = Path(__file__).parent / "data" / "examples"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["alarms", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_self_referring_and_bomb_files_are_errors(tmp_path: Path) -> None:
    selfref = tmp_path / "self.yaml"
    selfref.write_text("a: &a [*a]\n")
    assert invoke("validate", str(selfref))[::2] == (
        1,
        f"error: {selfref}:1:1: a[0]: an alias refers to the collection that contains it "
        "(anchored at line 1); a rule file is a tree\n",
    )
    test_file = tmp_path / "t.yaml"
    test_file.write_text("rule_files: &a [*a]\ntests: []\n")
    code, _, err = invoke("test", str(test_file))
    assert code == 1 and "refers to the collection that contains it" in err


def test_files_that_are_not_utf8_or_not_files(tmp_path: Path) -> None:
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"alarms: \x80\n")
    expected = f"error: {binary}:1:9: file {binary} is not UTF-8 (byte 8)\n"
    assert invoke("validate", str(binary))[::2] == (1, expected)
    assert invoke("test", str(binary))[::2] == (1, expected)
    points = tmp_path / "points.json"
    points.write_text("[]")
    at = "2026-01-01T00:00:00Z"
    assert invoke("eval", "--rules", str(binary), "--datapoints", str(points), "--at", at)[::2] == (
        1,
        expected,
    )
    code, _, err = invoke("test", str(tmp_path))
    assert (code, err) == (1, f"error: {tmp_path}:1:1: is a directory, not a file\n")


def test_validate_warns_about_empty_input(tmp_path: Path) -> None:
    code, out, err = invoke("validate", str(tmp_path))
    assert (code, err) == (
        0,
        f"warning: {tmp_path}:1:1: no rule files (*.yaml, *.yml) in {tmp_path}\n",
    )
    assert out.endswith("in 0 files\n")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    code, out, err = invoke("validate", str(empty))
    assert (code, err) == (0, f"warning: {empty}:1:1: file {empty} holds no rules\n")
    assert out.endswith("in 1 files\n")


def test_test_says_no_tests_and_detects_a_rule_file(tmp_path: Path) -> None:
    none = tmp_path / "none_test.yaml"
    none.write_text(f"rule_files: [{EXAMPLES}]\ntests: []\n")
    assert invoke("test", str(none)) == (0, "", f"no tests in {none}\n")
    rule_file = EXAMPLES / "example1.yaml"
    assert invoke("test", str(rule_file))[::2] == (
        1,
        f"error: {rule_file}:1:1: {rule_file} is a rule file; a test file has rule_files and "
        "tests\n",
    )


def test_validate_warns_about_unset_secret_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WK_ONCALL_SECRET", raising=False)
    monkeypatch.setenv("WK_SCALER_SECRET", "s")
    code, out, err = invoke("validate", str(EXAMPLES))
    assert code == 0 and out.startswith("ok: ")
    assert err == (
        f"warning: {EXAMPLES / 'example1.yaml'}:5:13: targets.oncall.secret: target 'oncall': "
        "secret environment variable WK_ONCALL_SECRET is not set; its deliveries fail unless "
        "it is set where the server runs\n"
    )


def test_errors_without_a_field_have_no_empty_segment(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("alarms: [\n")
    code, _, err = invoke("validate", str(broken))
    assert code == 1
    assert err.startswith(f"error: {broken}:2:1: invalid YAML: ")
